#!/usr/bin/env bash
# Stop the single-node SLURM cluster that tests/slurm/start.sh started in DIR: cancel its jobs,
# then stop slurmd, slurmctld and munged by the process ids in their pid files. Leaves DIR.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$(realpath -m "$1")
export SLURM_CONF="$dir/etc/slurm.conf"

# Jobs first, while slurmctld and slurmd can still end their processes. The job processes
# slurmd knows are noted (with their start times, against reused ids) to be killed should they
# outlive the cancellation.
leftovers=()
if [ -f "$dir/run/slurmctld.pid" ] && [ -f "$SLURM_CONF" ]; then
    for pid in $(scontrol listpids 2>/dev/null | awk 'NR > 1 {print $1}'); do
        leftovers+=("$pid:$(ps -o lstart= -p "$pid" 2>/dev/null)")
    done
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086  # one argument per job id
        scancel $jobs 2>/dev/null
        for _ in $(seq 60); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.25
        done
    fi
fi

stop() {  # stop the process whose id is in file $1: TERM, then KILL after 10 s
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}
stop "$dir/run/slurmd.pid"
stop "$dir/run/slurmctld.pid"
stop "$dir/run/munged.pid"
for entry in "${leftovers[@]}"; do
    pid=${entry%%:*}
    if [ -n "${entry#*:}" ] && [ "$(ps -o lstart= -p "$pid" 2>/dev/null)" = "${entry#*:}" ]; then
        kill -KILL "$pid" 2>/dev/null
    fi
done
# The link to this cluster's configuration that start.sh made, and nothing else.
if [ "$(readlink /run/slurm/conf 2>/dev/null)" = "$dir/etc" ]; then
    rm -f /run/slurm/conf
    rmdir /run/slurm 2>/dev/null
fi
exit 0
