#!/usr/bin/env bash
# Start a single-node SLURM cluster on 127.0.0.1 whose whole state lives in DIR:
#   tests/slurm/start.sh DIR        then  export SLURM_CONF=DIR/etc/slurm.conf  (or . DIR/env.sh)
# Starts munged, slurmctld and slurmd (Debian 12: munge, slurmctld, slurmd, slurm-client) as the
# calling user, which must be root for slurmd. The node takes this machine's CPUs and memory
# (`slurmd -C`) and NOVIC_TEST_SLURM_GPUS placeholder GPUs (default 2): GRES entries backed by
# plain files, so that `--gpus` requests are scheduled and counted; there is no GPU behind them.
# On any failure it stops what it started. tests/slurm/stop.sh DIR stops the cluster.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$(realpath -m "$1")
gpus=${NOVIC_TEST_SLURM_GPUS:-2}
node=novic0

for tool in munged mungekey slurmctld slurmd sinfo sbatch; do
    command -v "$tool" >/dev/null || { echo "$tool not found: install munge slurmctld slurmd slurm-client" >&2; exit 1; }
done

# The executor plugin's job step drops SLURM_CONF before it calls srun inside the job
# (snakemake-executor-plugin-slurm-jobstep 0.6.1 keeps only job-identity SLURM_* variables), so
# srun finds the configuration where SLURM clients look when SLURM_CONF is unset: first
# /etc/slurm/slurm.conf, then /run/slurm/conf/slurm.conf (where a configless slurmd caches it).
# This cluster's configuration is linked there below, and only if the first holds none.
if [ -e /etc/slurm/slurm.conf ]; then
    echo "/etc/slurm/slurm.conf exists: srun inside the jobs would use that cluster; run this on a machine without a SLURM configuration" >&2
    exit 1
fi
if [ -L /run/slurm/conf ] && [ ! -e /run/slurm/conf ]; then
    rm -f /run/slurm/conf   # left by a test cluster whose directory is gone
fi
if [ -e /run/slurm/conf ]; then
    echo "/run/slurm/conf exists (another SLURM cluster on this machine?); stop it first" >&2
    exit 1
fi
mkdir -p "$dir"/{etc,run,state,spool,log,gpu}
chmod 755 "$dir" "$dir/run"   # munged wants its socket directory world-searchable
mkdir -p -m 700 "$dir/key"
trap '"$here/stop.sh" "$dir" >/dev/null 2>&1 || true' ERR

# Two free ports on 127.0.0.1 (the kernel picks them; slurmctld and slurmd bind them right after).
read -r ctld_port slurmd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

# The node's hardware line as slurmd detects it, without its NodeName.
hardware=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')

: > "$dir/etc/plugstack.conf"
sed -e "s|@DIR@|$dir|g" -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    -e "s|@USER@|$(id -un)|g" -e "s|@NODE@|$node|g" -e "s|@HARDWARE@|$hardware|g" \
    -e "s|@GPUS@|$gpus|g" "$here/slurm.conf.in" > "$dir/etc/slurm.conf"
: > "$dir/etc/gres.conf"
for ((i = 0; i < gpus; i++)); do
    : > "$dir/gpu/gpu$i"
    echo "NodeName=$node Name=gpu File=$dir/gpu/gpu$i" >> "$dir/etc/gres.conf"
done
export SLURM_CONF="$dir/etc/slurm.conf"
echo "export SLURM_CONF=$SLURM_CONF" > "$dir/env.sh"

mkdir -p /run/slurm
ln -s "$dir/etc" /run/slurm/conf   # see above

mungekey --create --keyfile "$dir/key/munge.key" --force
munged --socket="$dir/run/munge.socket" --key-file="$dir/key/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/key/munged.seed"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$node"

# Wait (at most a minute) until the node has registered and accepts jobs.
for _ in $(seq 120); do
    state=$(sinfo -h -n "$node" -p cpu -o %t 2>/dev/null || true)
    if [ "$state" = idle ]; then
        echo "SLURM is up: SLURM_CONF=$SLURM_CONF (slurmctld 127.0.0.1:$ctld_port, slurmd 127.0.0.1:$slurmd_port, node $node: $hardware, $gpus placeholder GPUs)"
        exit 0
    fi
    sleep 0.5
done
echo "the SLURM node did not come up (state: '${state:-none}'); logs in $dir/log:" >&2
tail -n 20 "$dir"/log/*.log >&2 || true
false
