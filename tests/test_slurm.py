"""The execution profiles: profiles/local, and profiles/slurm on a real SLURM cluster.

The cluster test starts a single-node SLURM on 127.0.0.1 from Debian's packages
(tests/slurm/start.sh: munged, slurmctld and slurmd; no accounting database, since the executor
plugin can query job states with squeue) and runs the test-config pipeline twice, each in its own
copy of the working tree: with profiles/slurm, so that every job goes through sbatch, and with
profiles/local. It then holds SLURM's own records of the jobs against what Snakemake asked for,
checks that sharded rules had several jobs running at once, and that both runs made the same
outputs. tests/slurm/stop.sh tears the cluster down, also when the test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from snakemake.profiles import ProfileConfigFileParser
from snakemake.utils import available_cpu_count

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm"
DEBIAN_PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
SLURM_TOOLS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo")

# How the test sets the SLURM profile's environment, and the partitions of tests/slurm's cluster.
ACCOUNT = "novic-test"
PROFILE_ENV = {
    "NOVIC_SLURM_ACCOUNT": ACCOUNT,
    "NOVIC_SLURM_PARTITION": "cpu",
    "NOVIC_SLURM_GPU_PARTITION": "gpu",
    "NOVIC_SLURM_CAPTION_PARTITION": "net",
}
CAPTION_RULE = "generate_captions"
# Rules the workflow runs on the submit host by design (`localrules:`), all others go to SLURM:
# the `all` target, and the download of embedder weights (compute nodes often lack internet).
# (generate_captions joins them with a remote LLM API; tests/config.yaml uses the embedded one.)
SUBMIT_HOST_RULES = {"all", "prepare_embedder"}
# What the cluster runs: the test run's training mix, i.e. the noun stage, the sharded prompt
# multisets and the sharded, GPU-capable text embeddings. The caption LLM, training and
# evaluation have their own workflow tests and would only add minutes of CPU time here.
CLUSTER_TARGETS = ["results/models/tiny_ft9/mix.json"]
# A hang guard for a whole pipeline run, far above its normal duration; not a speed test.
RUN_TIMEOUT_S = 900


def expected_partition(rule: str, resources: dict[str, str]) -> str:
    """Where profiles/slurm must send a job, given PROFILE_ENV."""
    if int(resources.get("gpu", "0")) > 0:
        return PROFILE_ENV["NOVIC_SLURM_GPU_PARTITION"]
    if rule == CAPTION_RULE:
        return PROFILE_ENV["NOVIC_SLURM_CAPTION_PARTITION"]
    return PROFILE_ENV["NOVIC_SLURM_PARTITION"]


# --- Snakemake's console output -------------------------------------------------------------


@dataclass
class Job:
    """One job as Snakemake announced it ("rule NAME:" and its indented fields)."""

    rule: str
    local: bool
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def jobid(self) -> int:
        return int(self.fields["jobid"])

    @property
    def resources(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.fields.get("resources", "").split(", "))
        return {name: value for name, _, value in pairs if name}

    @property
    def threads(self) -> int:
        return int(self.fields.get("threads", "1"))

    @property
    def outputs(self) -> list[str]:
        return [p for p in self.fields.get("output", "").split(", ") if p]

    @property
    def key(self) -> tuple[str, str]:
        return self.rule, self.fields.get("wildcards", "")


_JOB_HEADER = re.compile(r"^(local)?(?:rule|checkpoint) (\S+):$")
_JOB_FIELD = re.compile(r"^    (\w+): (.*)$")
_SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$")


def parse_jobs(output: str) -> dict[int, Job]:
    """The jobs a Snakemake run announced, by Snakemake job id (the last announcement wins)."""
    jobs: dict[int, Job] = {}
    current: Job | None = None
    for line in output.splitlines():
        header = _JOB_HEADER.match(line)
        if header:
            current = Job(rule=header[2], local=bool(header[1]))
            continue
        item = _JOB_FIELD.match(line) if current else None
        if item:
            current.fields[item[1]] = item[2]
            if item[1] == "jobid":
                jobs[current.jobid] = current
        else:
            current = None
    return jobs


def parse_submissions(output: str) -> dict[int, list[tuple[str, Path]]]:
    """Snakemake job id -> [(SLURM job id, SLURM log file)] for every sbatch submission."""
    submissions: dict[int, list[tuple[str, Path]]] = {}
    for line in output.splitlines():
        m = _SUBMITTED.match(line.strip())
        if m:
            submissions.setdefault(int(m[1]), []).append((m[2], Path(m[3])))
    return submissions


# --- Running things -----------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without SLURM, profile or GPU settings of the caller's own."""
    prefixes = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_", "NOVIC_SLURM_", "SNAKEMAKE_")
    prefixes += ("NOVIC_GPUS",)
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    # The runs compare results, so both compute on the CPU even where the machine has a GPU.
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(extra)
    return env


def run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run cmd, failing the test with its output when it fails."""
    kwargs.setdefault("timeout", RUN_TIMEOUT_S)
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n"
            f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def copy_tree(dest: Path) -> Path:
    """Copy the working tree (tracked and untracked files, nothing git ignores) to dest."""
    listing = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout
    for name in filter(None, listing.split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def snakemake(tree: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", *args], cwd=tree, env=env)


# --- The cluster ----------------------------------------------------------------------------


def missing_tools() -> list[str]:
    return [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]


def cluster_unavailable() -> str | None:
    """Why this machine cannot run the SLURM test, or None when it can.

    Installs the Debian packages when they are missing and this process may (root, apt-get),
    the same way `make setup-dev` does.
    """
    if not sys.platform.startswith("linux"):
        return "the single-node SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs (CI runs the suite as root)"
    if missing_tools() and shutil.which("apt-get"):
        proc = subprocess.run(
            [REPO / "tools" / "ensure-debian-packages.sh", *DEBIAN_PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
        if missing_tools():
            return f"could not install {' '.join(DEBIAN_PACKAGES)}: {proc.stderr.strip()[-800:]}"
    if missing_tools():
        return f"SLURM is not installed (missing: {', '.join(missing_tools())}), and no apt-get"
    if Path("/etc/slurm/slurm.conf").exists():
        return "this machine has its own SLURM configuration, which srun inside the jobs would use"
    return None


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    cpus: int
    memory_mb: int


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = cluster_unavailable()
    if reason:
        pytest.skip(reason)
    # A short path: munged's and slurmstepd's Unix sockets live in it (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="novic-slurm-"))
    try:
        run([CLUSTER / "start.sh", root], timeout=120)
        env = clean_env(SLURM_CONF=str(root / "etc" / "slurm.conf"))
        node = run(["sinfo", "-h", "-N", "-p", "cpu", "-o", "%c %m"], env=env).stdout.split()
        yield Cluster(root=root, env=env, cpus=int(node[0]), memory_mb=int(node[1]))
    finally:
        subprocess.run([CLUSTER / "stop.sh", root], check=False, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def slurm_records(cluster: Cluster, run_id: str) -> dict[str, dict]:
    """SLURM's records of the jobs of one Snakemake run, by SLURM job id.

    slurmctld keeps finished jobs for MinJobAge (an hour on the test cluster); `squeue
    --states=all` reports them with partition, account, comment, times and requests.
    """
    listing = json.loads(run(["squeue", "--json", "--states=all"], env=cluster.env).stdout)
    return {str(job["job_id"]): job for job in listing["jobs"] if job["name"] == run_id}


# --- Outputs ------------------------------------------------------------------------------


def without_run_facts(data):
    """JSON data without what describes the run rather than its result: durations and rates
    (keys ending in `_s`: `elapsed_s`, `calls_per_s`, ...) and request accounting (`usage`:
    requests sent, retried after a timeout, answered from the cache)."""
    if isinstance(data, dict):
        return {
            key: without_run_facts(value)
            for key, value in data.items()
            if not (key.endswith("_s") or key == "usage")
        }
    if isinstance(data, list):
        return [without_run_facts(value) for value in data]
    return data


def same_content(a: Path, b: Path) -> bool:
    """Files equal in content: Parquet as tables with their metadata, JSON as data (without
    the run's timings), anything else byte for byte."""
    if a.suffix == ".parquet":
        ta, tb = pq.read_table(a), pq.read_table(b)
        return ta.equals(tb) and ta.schema.metadata == tb.schema.metadata
    if a.suffix == ".json":
        da, db = (without_run_facts(json.loads(path.read_text())) for path in (a, b))
        return da == db
    return a.read_bytes() == b.read_bytes()


def rule_outputs(jobs: dict[int, Job]) -> set[str]:
    """Every output file of the announced jobs, except logs and benchmarks (timings differ)."""
    return {
        path
        for job in jobs.values()
        for path in job.outputs
        if not path.startswith(("results/logs/", "results/benchmarks/"))
    }


# --- Tests --------------------------------------------------------------------------------


def read_profile(name: str) -> dict:
    """A profile as Snakemake reads it: its YTE template evaluated in this environment."""
    path = REPO / "profiles" / name / "profile.yaml"
    with path.open() as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def test_profiles_follow_the_environment(monkeypatch):
    for variable in [*PROFILE_ENV, "NOVIC_GPUS"]:
        monkeypatch.delenv(variable, raising=False)
    # Nothing set: SLURM's own defaults for account and partition, no per-rule placement.
    slurm = read_profile("slurm")
    assert slurm["executor"] == "slurm"
    assert not any(r.startswith("slurm_") for r in slurm["default-resources"]), slurm
    assert "set-resources" not in slurm
    monkeypatch.setenv("NOVIC_GPUS", "3")
    assert read_profile("local")["resources"] == ["gpu=3"]
    monkeypatch.setenv("NOVIC_GPUS", "0")
    assert read_profile("local")["resources"] == ["gpu=0"]

    for variable, value in PROFILE_ENV.items():
        monkeypatch.setenv(variable, value)
    slurm = read_profile("slurm")
    assert f"slurm_account='{ACCOUNT}'" in slurm["default-resources"]
    assert "slurm_partition='cpu'" in slurm["default-resources"]
    assert f"{CAPTION_RULE}:slurm_partition='net'" in slurm["set-resources"]
    assert "train_decoder:slurm_partition='gpu'" in slurm["set-resources"]


def test_slurm_profile_places_the_paper_scale_jobs(tmp_path):
    """`snakemake -n --profile profiles/slurm` on the default config: every job's resources,
    account and partition, GPU jobs in the GPU partition."""
    tree = copy_tree(tmp_path / "tree")
    # No OPENAI_API_KEY: a dry run needs none (the caption jobs read it when they start).
    env = clean_env(**PROFILE_ENV)
    env.pop("OPENAI_API_KEY", None)
    dry = snakemake(tree, "-n", "--profile", "profiles/slurm", env=env)
    jobs = [job for job in parse_jobs(dry.stdout + dry.stderr).values() if job.rule != "all"]
    assert jobs, "the dry run announced no jobs"
    for job in jobs:
        resources = job.resources
        assert int(resources["mem_mb"]) > 0 and int(resources["runtime"]) > 0, job.key
        assert resources["slurm_account"] == ACCOUNT, (job.key, resources)
        placed = resources["slurm_partition"]
        assert placed == expected_partition(job.rule, resources), (job.key, resources)
    # The local profile parses too (its GPU limit is checked above and in the cluster test).
    snakemake(tree, "-n", "--profile", "profiles/local", env={**env, "NOVIC_GPUS": "1"})


@pytest.mark.slow
def test_pipeline_on_slurm_equals_local_run(slurm_cluster: Cluster, tmp_path):
    slurm_tree = copy_tree(tmp_path / "slurm")
    local_tree = copy_tree(tmp_path / "local")
    # targets first: --configfile and --resources take every argument that follows them
    common = [*CLUSTER_TARGETS, "--configfile", "tests/config.yaml"]

    # The local run works while the SLURM run mostly waits for its status checks.
    local_log = (tmp_path / "local.log").open("w")
    local_cmd = [sys.executable, "-m", "snakemake", *common, "--profile", "profiles/local"]
    local_proc = subprocess.Popen(
        local_cmd,
        cwd=local_tree,
        env=clean_env(NOVIC_GPUS="0"),
        stdout=local_log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Status by squeue (this cluster keeps no accounting database), checked from 2 s on;
        # SLURM logs kept for the checks below; jobs capped to the one small node's CPUs and
        # memory, as on a cluster whose nodes are smaller than the paper's recipe asks for.
        slurm = snakemake(
            slurm_tree,
            *common,
            "--profile",
            "profiles/slurm",
            "--slurm-status-command",
            "squeue",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--slurm-keep-successful-logs",
            "--max-threads",
            str(slurm_cluster.cpus),
            "--resources",
            f"mem_mb={slurm_cluster.memory_mb}",
            env={**slurm_cluster.env, **PROFILE_ENV},
        )
        local_proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if local_proc.poll() is None:
            local_proc.terminate()
            local_proc.wait(timeout=60)
        local_log.close()
    local_output = (tmp_path / "local.log").read_text()
    assert local_proc.returncode == 0, f"the local run failed:\n{local_output[-6000:]}"
    # The local profile took every core and, told there is no GPU, lowered GPU jobs to none.
    assert f"Provided cores: {available_cpu_count()}" in local_output
    assert 'gpu=Resource("gpu", 0)' in re.search(r"Provided resources: (.*)", local_output)[1]

    output = slurm.stdout + slurm.stderr
    jobs = parse_jobs(output)
    submissions = parse_submissions(output)
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, "the run did not use the SLURM executor"
    records = slurm_records(slurm_cluster, run_id[1])

    # Every job but those of the submit host's rules went through sbatch, once, and SLURM ran
    # it as asked.
    on_host = {job.rule for job in jobs.values() if job.local}
    assert on_host <= SUBMIT_HOST_RULES, f"ran on the submit host: {on_host}"
    remote = {jobid: job for jobid, job in jobs.items() if not job.local}
    assert set(submissions) == set(remote)
    resubmitted = {jobs[j].key: s for j, s in submissions.items() if len(s) > 1}
    assert not resubmitted, f"jobs that needed another attempt: {resubmitted}"
    assert set(records) == {s[0][0] for s in submissions.values()}, "SLURM ran other jobs"
    for jobid, job in remote.items():
        slurm_id, slurm_log = submissions[jobid][0]
        record, resources = records[slurm_id], job.resources
        assert record["job_state"] == "COMPLETED", (job.key, record["job_state"])
        assert record["comment"].split("_wildcards_")[0] == f"rule_{job.rule}", record["comment"]
        assert record["account"] == ACCOUNT, (job.key, record["account"])
        assert record["partition"] == expected_partition(job.rule, resources), (job.key, record)
        assert record["partition"] == resources["slurm_partition"], job.key
        assert record["memory_per_node"] == int(resources["mem_mb"]), job.key
        assert record["cpus"] == job.threads, job.key
        wants_gpu = int(resources.get("gpu", "0")) > 0
        assert ("gpu" in record["tres_per_job"]) == wants_gpu, (job.key, record["tres_per_job"])
        # The job's SLURM log, named by its SLURM job id, shows Snakemake running the rule.
        assert slurm_log.name == f"{slurm_id}.log" and slurm_log.is_file(), slurm_log
        log_text = slurm_log.read_text()
        assert f"rule {job.rule}:" in log_text and "Finished jobid" in log_text, slurm_log

    # Rules with several jobs (the sharded stages) had jobs running at the same time.
    by_rule: dict[str, list[tuple[int, int]]] = {}
    for jobid, job in remote.items():
        record = records[submissions[jobid][0][0]]
        by_rule.setdefault(job.rule, []).append((record["start_time"], record["end_time"]))
    t0 = min(start for spans in by_rule.values() for start, _ in spans)
    print(f"SLURM jobs of run {run_id[1]} (seconds from the first start):")  # shown with -s
    for rule, spans in by_rule.items():
        print(f"  {rule:24} {sorted((a - t0, b - t0) for a, b in spans)}")
    for rule, spans in by_rule.items():
        if len(spans) > 1:
            overlapping = any(a[0] < b[1] and b[0] < a[1] for a, b in combinations(spans, 2))
            assert overlapping, f"{rule}: no two of its jobs ran at once: {sorted(spans)}"

    # The same jobs made the same outputs as on the local machine.
    local_jobs = parse_jobs(local_output)
    assert {job.key for job in local_jobs.values()} == {job.key for job in jobs.values()}
    outputs = rule_outputs(jobs)
    assert outputs == rule_outputs(local_jobs)
    differing = [p for p in sorted(outputs) if not same_content(slurm_tree / p, local_tree / p)]
    assert not differing, f"outputs that differ between the SLURM and the local run: {differing}"
