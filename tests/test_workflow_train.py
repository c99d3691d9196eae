"""Workflow tests of rule train_decoder: a real (tiny, CPU) training run of two runs, then dry
runs that check what a change re-runs and that bad settings stop before any job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from project import REPO, TEST_CONFIG, merged_config, override_files, snakemake
from snakemake.exceptions import WorkflowError

from novic.checkpoint import load_decoder
from novic.dictionary import read_nouns

pytestmark = pytest.mark.slow


CONFIG = merged_config(REPO / TEST_CONFIG)
RUN = CONFIG["build"]["runs"][0]
SETTINGS = CONFIG["runs"][RUN]
# A second run on the same mix with other noise: shares every upstream file with the first.
OTHER = f"{RUN}_other"
TWO_RUNS = {
    "runs": {OTHER: {**{k: SETTINGS[k] for k in ("embedder", "threshold", "mix", "model",
                                                 "train")},
                     "noise": {"scheme": "GaussElem", "vec_norm": 0.5}}}
}  # fmt: skip


def outputs(run: str) -> list[str]:
    return [f"results/models/{run}/decoder.pt", f"results/models/{run}/metrics.jsonl"]


TARGETS = outputs(RUN) + outputs(OTHER)


def configfiles(workdir: Path, *overrides: dict) -> list[str]:
    return override_files(workdir, TWO_RUNS, *overrides)


def dry_run(workdir: Path, *overrides: dict) -> set[str]:
    return set(snakemake(workdir, TARGETS, configfiles(workdir, *overrides), dryrun=True))


@pytest.fixture(scope="module")
def project(noun_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the noun stage's project in which both test runs have been trained once."""
    assert "captions" not in SETTINGS["mix"], "the test run should not start the LLM"
    workdir = tmp_path_factory.mktemp("train")
    shutil.copytree(noun_project, workdir, dirs_exist_ok=True)
    snakefile = workdir / "Snakefile"
    text = snakefile.read_text()
    if "rules/train.smk" not in text:  # until the root Snakefile includes the stage
        snakefile.write_text(text + '\n\ninclude: "workflow/rules/train.smk"\n')
    snakemake(workdir, TARGETS, configfiles(workdir))
    return workdir


def test_decoders_are_trained_from_their_mix(project: Path) -> None:
    vocab = read_nouns(project / f"results/vocab/ft{SETTINGS['threshold']}.parquet")
    for run in (RUN, OTHER):
        model, targets, record = load_decoder(project / f"results/models/{run}/decoder.pt")
        assert targets.nouns[1:] == vocab.column("target_noun").to_pylist()
        assert targets.noun_ids[1:] == vocab.column("id").to_pylist()
        assert record["meta"]["run"] == run
        assert record["meta"]["embedder_spec"] == CONFIG["embedders"][SETTINGS["embedder"]]
        assert record["meta"]["config"]["model"] == SETTINGS["model"]
        assert model.cfg.hidden == SETTINGS["model"]["hidden"]
        assert record["summary"]["heldout"]["rows"] > 0
        lines = (project / f"results/models/{run}/metrics.jsonl").read_text().splitlines()
        metrics = [json.loads(line) for line in lines]
        assert [m["chunk"] for m in metrics] == list(range(1, len(metrics) + 1))
        assert metrics[-1]["chunks"] == len(metrics) >= 2 and metrics[-1]["device"] == "cpu"
        assert not (project / f"results/models/{run}/work/checkpoint.pt").exists()
    noise = [load_decoder(project / f"results/models/{r}/decoder.pt")[2]["noise"]["scheme"]
             for r in (RUN, OTHER)]  # fmt: skip
    assert noise == [SETTINGS["noise"]["scheme"], "GaussElem"]
    log = (project / f"results/logs/train_decoder/{RUN}.log").read_text()
    assert "samples/s" in log and "ETA" in log and "held-out rows" in log
    assert (project / f"results/benchmarks/train_decoder/{RUN}.tsv").exists()


def test_nothing_left_to_do(project: Path) -> None:
    assert dry_run(project) == set()


def test_noise_change_retrains_that_run_only(project: Path) -> None:
    override = {"runs": {OTHER: {"noise": {"vec_norm": 0.75}}}}
    assert dry_run(project, override) == set(outputs(OTHER))


def test_train_change_retrains_but_reembeds_nothing(project: Path) -> None:
    override = {"runs": {RUN: {"train": {"seed": 1}, "model": {"dropout": 0.0}}}}
    assert dry_run(project, override) == set(outputs(RUN))


def test_checkpoint_interval_and_a_gpu_retrain_nothing(project: Path) -> None:
    override = {"runs": {RUN: {"train": {"checkpoint_every": 5}}}}
    assert dry_run(project, override) == set()
    files = configfiles(project)
    assert snakemake(project, TARGETS, files, dryrun=True, resources={"gpu": 1}) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"hidden": 30, "heads": 4}}, rf"runs\.{RUN}\.model\.heads"),
        ({"noise": {"scheme": "GaussAngle"}}, rf"runs\.{RUN}\.noise\.angle_std"),
        ({"noise": {"scheme": "Gaussian"}}, r"noise\.scheme"),
        ({"train": {"accum": 0}}, r"train\.accum"),
    ],
)
def test_bad_settings_stop_before_any_job(project: Path, override: dict, message: str) -> None:
    with pytest.raises((WorkflowError, ValueError), match=message):
        dry_run(project, {"runs": {RUN: override}})


@pytest.mark.parametrize(
    "victim",
    [
        f"results/models/{RUN}/decoder.pt",  # e.g. a killed --forcerun train_decoder
        f"results/embeddings/{SETTINGS['embedder']}/prompts/ft{SETTINGS['threshold']}/m1/part-0000.parquet",
    ],
)
def test_a_missing_artifact_is_rebuilt_by_the_default_target(
    project: Path, tmp_path: Path, victim: str
) -> None:
    """Nothing stale passes as done: the default target (evaluation off) rebuilds a deleted
    decoder or embedding shard and what depends on it."""
    workdir = tmp_path / "copy"
    shutil.copytree(project, workdir)
    build = {"build": {"runs": [RUN, OTHER], "evaluate": False}}
    files = configfiles(workdir, build)
    assert set(snakemake(workdir, configfiles=files, dryrun=True)) == set()
    (workdir / victim).unlink()
    updated = set(snakemake(workdir, configfiles=files, dryrun=True))
    assert victim in updated and set(outputs(RUN)) <= updated
