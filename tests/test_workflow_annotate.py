"""Workflow tests of LLM annotation (dry runs): the DAG predictions -> annotate_predictions ->
score_open_vocab -> the run's report, only for benchmarks with people's annotations and only
with eval.annotate.llm set; bad settings stop before any job, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from project import copy_project, override_files, snakemake

RUN = "tiny_ft9"
ANNOTATIONS = f"results/annotations/smollm2/sample_photos/{RUN}.json"
SCORE = f"results/eval/{RUN}/sample_photos.open_vocab.json"


def dry_run(workdir: Path, *overrides: dict) -> set[str]:
    return set(snakemake(workdir, configfiles=override_files(workdir, *overrides), dryrun=True))


def test_annotation_jobs_follow_the_predictions_of_annotated_benchmarks(tmp_path: Path) -> None:
    workdir = copy_project(tmp_path)
    updated = dry_run(workdir, {"eval": {"annotate": {"llm": "smollm2"}}})
    assert {ANNOTATIONS, SCORE, f"results/report/{RUN}/metrics.csv"} <= updated
    # Fashion-MNIST is graded per class (resources/annotations/fashion_mnist.json): its jobs run
    # too (and send nothing: `other` grades every noun); without an annotation file, none
    assert f"results/eval/{RUN}/fashion_mnist.open_vocab.json" in updated
    plain = dry_run(
        workdir,
        {
            "eval": {
                "annotate": {"llm": "smollm2"},
                "benchmarks": {"fashion_mnist": {"annotations": ""}},
            }
        },
    )
    assert not any("fashion_mnist" in p for p in plain if "annotations/" in p or "open_vocab" in p)
    # off by default: no LLM is asked
    default = dry_run(workdir)
    assert not any(p.startswith("results/annotations/") or "open_vocab" in p for p in default)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"eval": {"annotate": {"llm": "gpt4o"}}}, r"eval\.annotate\.llm: 'gpt4o' is not an entry"),
        (
            {"eval": {"annotate": {"llm": "smollm2", "prompt": "{label}"}}},
            r"eval\.annotate\.prompt",
        ),
    ],
)
def test_bad_annotation_settings_stop_before_any_job(
    tmp_path: Path, override: dict, message: str
) -> None:
    workdir = copy_project(tmp_path)
    with pytest.raises(Exception, match=message):
        dry_run(workdir, override)


def test_annotation_and_score_jobs_run_against_a_local_server(tmp_path: Path) -> None:
    """The two rules for real, on given predictions of the bundled photos (evaluation itself is
    left out with allowed_rules), the LLM a real local OpenAI-compatible server; a re-run of
    the annotation job sends nothing (the reply cache answers)."""
    import json

    from llm_fault_server import FaultServer
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )
    from test_annotate import PREDICTIONS, UNJUDGED, grader, predictions_file

    server = FaultServer().start()
    server.reply = grader
    try:
        workdir = copy_project(tmp_path)
        llm = {"backend": "openai-compatible", "model": "fake-grader", "base_url": server.base_url}
        files = override_files(
            workdir,
            {
                "captions": {"llms": {"fake": llm}},
                "eval": {"annotate": {"llm": "fake", "whole_vocab": False}},
            },
        )
        preds = workdir / f"results/eval/{RUN}/sample_photos.predictions.json"
        preds.parent.mkdir(parents=True)
        predictions_file(preds)
        score = SCORE

        def run() -> None:
            with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
                workflow = api.workflow(
                    resource_settings=ResourceSettings(cores=1),
                    config_settings=ConfigSettings(configfiles=[workdir / f for f in files]),
                    snakefile=workdir / "Snakefile",
                    workdir=workdir,
                )
                dag = workflow.dag(
                    DAGSettings(
                        targets=frozenset([score]),
                        allowed_rules=frozenset(["annotate_predictions", "score_open_vocab"]),
                    )
                )
                dag.execute_workflow(executor="local")

        run()
        rows = json.loads(
            (workdir / f"results/annotations/fake/sample_photos/{RUN}.json").read_text()
        )
        assert {r["noun"] for r in rows["rows"]} == UNJUDGED
        assert all(r["by"] == "fake-grader" for r in rows["rows"])
        assert len(server.answered) == len(UNJUDGED)
        assert (workdir / "results/annotations/fake/cache").is_dir()
        out = json.loads((workdir / score).read_text())
        top5 = out["open_vocab"]["top5"]
        assert top5["annotated_by"] == {
            "human": 25 - len(UNJUDGED),
            "llm": len(UNJUDGED),
            "missing": 0,
        }
        assert top5["images"] == len(PREDICTIONS)
        log = (workdir / f"results/logs/eval/{RUN}/sample_photos.open_vocab.log").read_text()
        assert "annotated by people 100%" in log  # top-1: every first noun is people's
        # the grades deleted (as Snakemake does before a re-run): rebuilt from the cache alone
        (workdir / f"results/annotations/fake/sample_photos/{RUN}.json").unlink()
        sent = len(server.requests)
        run()
        assert len(server.requests) == sent
        assert json.loads((workdir / score).read_text())["open_vocab"] == out["open_vocab"]
    finally:
        server.stop()
