"""Workflow tests of the caption stage, with the openai backend pointed at the fault server:
the key never reaches a file, which config changes re-run what, and a run killed mid-way
resumes without sending any answered request again."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from llm_fault_server import FaultServer
from project import TEST_CONFIG, snakemake

from novic.textdata import read_text, text_num_rows

pytestmark = pytest.mark.slow

KEY = "sk-novic-test-key-must-not-leak-7f3a9c"
FOLDER = "results/captions/fake/ft9"
SAMPLES = [f"{FOLDER}/samples/{name}.parquet" for name in ("part-0000", "part-0001", "heldout")]
TARGETS = [*SAMPLES, f"{FOLDER}/captions.stats.json"]
SHARDS = [
    f"{FOLDER}/replies/shard-{k:03d}.{ext}" for k in range(2) for ext in ("parquet", "stats.json")
]
OVERRIDE = {
    "captions": {
        "llm": "fake",
        "llms": {"fake": {"backend": "openai", "model": "fake-model", "seed": 0}},
        "shards": 2,
        "generate": {
            "max_nouns": 8,
            "captions_per_call": 4,
            "quota_per_freq": 2,
            "quota_freq_cap": 2,
            "max_unproductive_calls": 2,
        },
        "requests": {"concurrency": 2, "timeout": 20, "max_retries": 3, "backoff_base": 0.05},
        "sample": {
            "template_multiplier": 2,
            "sample_multiplier": 3,
            "parts": 2,
            "heldout_fraction": 0.3,
        },
    }
}


def setup(noun_project: Path, dest: Path, override: dict) -> Path:
    shutil.copytree(noun_project, dest)
    (dest / "captions.yaml").write_text(yaml.safe_dump(override))
    return dest


def run(workdir: Path, override: dict | None = None, dryrun: bool = False) -> set[str]:
    files = [TEST_CONFIG, "captions.yaml"]
    if override is not None:
        (workdir / "change.yaml").write_text(yaml.safe_dump(override))
        files.append("change.yaml")
    return set(snakemake(workdir, TARGETS, configfiles=files, dryrun=dryrun))


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """The fault server, with the openai backend's key and base URL in the environment."""
    s = FaultServer().start()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
    yield s
    s.stop()


def test_openai_backend_key_never_stored_and_reruns(
    noun_project: Path, tmp_path: Path, server: FaultServer
) -> None:
    workdir = setup(noun_project, tmp_path / "repo", OVERRIDE)
    server.faults.extend(["429", "500", "nolist"])
    run(workdir)
    sent = len(server.requests)
    assert sent > 8 and all(
        r["headers"]["authorization"] == f"Bearer {KEY}" for r in server.requests
    )
    assert text_num_rows([workdir / p for p in SAMPLES]) > 0
    # held-out caption templates give evaluation rows and never a training row
    held, train = (
        {(r["text"], r["targets"][0]) for r in read_text([workdir / p for p in paths]).to_pylist()}
        for paths in (SAMPLES[-1:], SAMPLES[:-1])
    )
    assert held and not held & train
    captions = pq.read_table(workdir / FOLDER / "captions.parquet")
    vocab = pq.read_metadata(workdir / "results/vocab/ft9.parquet").num_rows
    assert len(set(captions.column("noun_id").to_pylist())) == min(8, vocab)
    # the key reached the server, and no file of the run
    for folder in ("results", ".snakemake"):
        for path in (workdir / folder).rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), f"API key found in {path}"
    # how requests are sent changes nothing
    change = {"captions": {"requests": {"concurrency": 5, "max_requests": 100000}}}
    assert run(workdir, change, dryrun=True) == set()
    # a filter change re-filters and re-samples from the cached replies, without a request
    change = {"captions": {"filter": {"min_length": 25}}}
    expected = {f"{FOLDER}/captions.parquet", f"{FOLDER}/captions.stats.json", *SAMPLES}
    assert run(workdir, change, dryrun=True) == expected
    assert run(workdir, change) == expected
    assert len(server.requests) == sent
    # a sampling change only re-samples
    change = {"captions": {"filter": {"min_length": 25}, "sample": {"seed": 3}}}
    assert run(workdir, change, dryrun=True) == set(SAMPLES)
    # what is asked re-runs generation
    change = {"captions": {"generate": {"captions_per_call": 5}}}
    assert set(SHARDS) <= run(workdir, change, dryrun=True)
    # another split into jobs re-runs them, and the cache still answers every request
    change = {"captions": {"filter": {"min_length": 25}, "shards": 3}}
    assert f"{FOLDER}/replies/shard-002.parquet" in run(workdir, change)
    assert len(server.requests) == sent


def cache_lines(workdir: Path) -> int:
    files = (workdir / "results/captions/fake/cache").glob("*.jsonl")
    return sum(len(p.read_bytes().splitlines()) for p in files)


def test_killed_run_resumes_without_paying_twice(
    noun_project: Path, tmp_path: Path, server: FaultServer
) -> None:
    override = copy.deepcopy(OVERRIDE)
    override["captions"]["generate"]["max_nouns"] = 12
    workdir = setup(noun_project, tmp_path / "repo", override)
    answered_first = 7
    server.hang_after = answered_first  # later requests never get a reply
    snakemake_bin = Path(sys.executable).parent / "snakemake"
    command = [
        str(snakemake_bin),
        "--cores",
        "2",
        "--configfile",
        TEST_CONFIG,
        "captions.yaml",
        "--rerun-incomplete",
        *TARGETS,
    ]
    with open(tmp_path / "first.log", "wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 180
        try:
            while not (
                cache_lines(workdir) == answered_first and len(server.requests) > answered_first
            ):
                assert process.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "the first run made no progress"
                time.sleep(0.1)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    first = server.keys()
    answered = set(first[:answered_first])
    hung = set(first[answered_first:])
    assert set(server.answered) == answered
    assert not all((workdir / p).exists() for p in SHARDS)  # killed before the end

    server.hang_after = None
    subprocess.run(
        [
            str(snakemake_bin),
            "--unlock",
            "--cores",
            "1",
            "--configfile",
            TEST_CONFIG,
            "captions.yaml",
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    second_log = tmp_path / "second.log"
    with open(second_log, "wb") as out:
        result = subprocess.run(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    assert result.returncode == 0, second_log.read_text()
    second = server.keys()[len(first) :]
    assert not answered & set(second), "an answered request was sent again"
    assert len(second) == len(set(second))
    assert hung <= set(second)  # what never got a reply is asked again
    assert text_num_rows([workdir / p for p in SAMPLES]) > 0
    assert cache_lines(workdir) == answered_first + len(second)


def caption_jobs(workdir: Path) -> list[int]:
    """The pids of the generate_captions jobs running in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            here = os.readlink(proc / "cwd") == str(workdir)
        except OSError:
            continue
        if here and b"generate_captions.py" in command:
            pids.append(int(proc.name))
    return pids


def test_caption_jobs_stop_when_snakemake_is_killed(
    noun_project: Path, tmp_path: Path, server: FaultServer
) -> None:
    """`kill -9` of Snakemake alone (not its process group), then at once `--unlock` and a
    re-run: the old caption jobs finish what they have in flight and stop within seconds
    instead of running on next to the new ones, and no request is sent twice."""
    override = copy.deepcopy(OVERRIDE)
    override["captions"]["generate"]["max_nouns"] = 40
    workdir = setup(noun_project, tmp_path / "repo", override)
    server.delay = 1.0  # orphans would need far longer than 10 s to finish their nouns
    snakemake_bin = Path(sys.executable).parent / "snakemake"
    configs = ["--configfile", TEST_CONFIG, "captions.yaml"]
    command = [str(snakemake_bin), "--cores", "2", *configs, "--rerun-incomplete", *TARGETS]
    unlock = [str(snakemake_bin), "--unlock", "--cores", "1", *configs]
    runs: list[subprocess.Popen] = []

    def start(log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            runs.append(
                subprocess.Popen(
                    command,
                    cwd=workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return runs[-1]

    try:
        first = start(tmp_path / "first.log")
        deadline = time.monotonic() + 180
        while not (cache_lines(workdir) >= 4 and caption_jobs(workdir)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first run made no progress"
            time.sleep(0.05)
        orphans = set(caption_jobs(workdir))
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed = time.monotonic()
        subprocess.run(unlock, cwd=workdir, check=True, capture_output=True)
        second = start(tmp_path / "second.log")
        while orphans & set(caption_jobs(workdir)):
            assert time.monotonic() < killed + 10, "a caption job outlived Snakemake"
            time.sleep(0.1)
        server.delay = 0.0
        assert second.wait(180) == 0, (tmp_path / "second.log").read_text()
    finally:
        for run_ in runs:  # the first run's process group holds its jobs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run_.pid, signal.SIGKILL)
    keys = server.keys()
    assert len(keys) == len(set(keys)), "a request was sent twice"
    assert text_num_rows([workdir / p for p in SAMPLES]) > 0
    assert cache_lines(workdir) == len(keys)


def test_a_missing_key_stops_the_caption_job_at_once(
    noun_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No declared envvars: the DAG builds without the key; the job that needs it fails before
    any request, and its log names the variable."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    workdir = setup(noun_project, tmp_path / "repo", OVERRIDE)
    assert set(SHARDS) <= run(workdir, dryrun=True)
    with pytest.raises(Exception):  # noqa: B017 (Snakemake reports a failed job as a generic error)
        run(workdir)
    log = workdir / "results/logs/captions/fake/ft9/generate_captions.000.log"
    assert "environment variable OPENAI_API_KEY is not set" in log.read_text()
    assert not (workdir / "results/captions/fake/cache").exists()
