"""Workflow tests of evaluation and the report: a real run of the test config's decoder on a
Fashion-MNIST subset, the bundled photos and the held-out templates, the HTML report, and dry
runs that check what a change re-runs, that bad settings stop early, and the paper's DAG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from project import TEST_CONFIG, copy_project, override_files, snakemake
from snakemake.api import SnakemakeApi
from snakemake.report.html_reporter import ReportSettings
from snakemake.settings.types import (
    ConfigSettings,
    DAGSettings,
    OutputSettings,
    Quietness,
    ResourceSettings,
)

pytestmark = pytest.mark.slow

RUN = "tiny_ft9"
BENCHMARKS = ("fashion_mnist", "sample_photos")
TARGETS = [
    *(f"results/eval/{RUN}/{b}.json" for b in BENCHMARKS),
    f"results/eval/{RUN}/text.json",
    f"results/report/{RUN}/metrics.csv",
    "results/report/runs.csv",
]
EVAL_OUTPUTS = {
    *(f"results/eval/{RUN}/{b}{ext}" for b in BENCHMARKS
      for ext in (".json", ".predictions.json", ".samples.png")),
    f"results/eval/{RUN}/text.json",
    *(f"results/report/{RUN}/{f}" for f in ("metrics.csv", "training.png", "accuracy.png",
                                           "modality_gap.png")),
    "results/report/runs.csv",
    "results/report/runs.png",
    "results/report/paper_table1.csv",
    "results/report/paper_table2.csv",
}  # fmt: skip
# the whole-vocabulary baseline's noun embeddings: both benchmarks use the imagenet prompts
NOUN_CACHE = "results/vocab_embeddings/tiny/ft9/imagenet.parquet"


def dry_run(workdir: Path, *overrides: dict, resources: dict | None = None) -> set[str]:
    files = override_files(workdir, *overrides)
    return set(snakemake(workdir, TARGETS, files, dryrun=True, resources=resources))


@pytest.fixture(scope="module")
def project(noun_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the noun stage's project in which the test run was trained and evaluated."""
    workdir = tmp_path_factory.mktemp("eval")
    shutil.copytree(noun_project, workdir, dirs_exist_ok=True)
    snakemake(workdir, TARGETS)
    return workdir


def test_every_benchmark_and_the_text_side_are_evaluated(project: Path) -> None:
    for path in EVAL_OUTPUTS:
        assert (project / path).is_file(), path
    fashion = json.loads((project / f"results/eval/{RUN}/fashion_mnist.json").read_text())
    assert fashion["evaluated"] == 40 and fashion["device"] == "cpu"
    assert fashion["random_embedder"] and len(fashion["config_sha256"]) == 64
    assert fashion["zero_shot"]["chance"] == pytest.approx(0.1)
    assert {"zero_shot", "guided", "free", "modality_gap", "timings"} <= set(fashion)
    photos = json.loads((project / f"results/eval/{RUN}/sample_photos.json").read_text())
    assert photos["open_vocab"]["top1"]["images"] == 5
    preds = json.loads((project / f"results/eval/{RUN}/sample_photos.predictions.json").read_text())
    assert len(preds["samples"]) == 5 and all(len(s["predictions"]) == 10 for s in preds["samples"])
    text = json.loads((project / f"results/eval/{RUN}/text.json").read_text())
    assert set(text["sources"]) == {"m1", "m2"}  # the held-out rows of the run's multisets
    assert all(s["rows"] > 0 and 0 <= s["top1"] <= 1 for s in text["sources"].values())
    log = (project / f"results/logs/eval/{RUN}/fashion_mnist.log").read_text()
    assert "images/s" in log and "ETA" in log
    assert (project / f"results/benchmarks/eval/{RUN}/fashion_mnist.tsv").is_file()
    table = (project / f"results/report/{RUN}/metrics.csv").read_text().splitlines()
    assert table[0].startswith("benchmark,") and len(table) == 1 + 2 + 2
    assert "whole-vocab top-1" in table[0] and "whole-vocab ms/image" in table[0]
    runs = (project / "results/report/runs.csv").read_text().splitlines()
    assert runs[0].startswith("run,noise,") and len(runs) == 1 + 2 + 2
    assert all(row.startswith(f"{RUN},GaussElemUniformAngle,") for row in runs[1:])
    # the paper's tables: the tiny embedder is not the paper's, so no paper numbers
    table1 = (project / "results/report/paper_table1.csv").read_text().splitlines()
    table2 = (project / "results/report/paper_table2.csv").read_text().splitlines()
    assert table1[0].startswith("run,embedder,vocabulary,benchmark,") and len(table1) == 2
    assert table1[1].startswith(f"{RUN},tiny,FT9,fashion_mnist,40,") and table1[1].endswith(",")
    # open-vocabulary scores: Fashion-MNIST graded per class, the photos per image
    assert len(table2) == 3 and table2[1].startswith(f"{RUN},tiny,FT9,fashion_mnist,40,")
    assert table2[2].startswith(f"{RUN},tiny,FT9,sample_photos,5,")


def test_the_whole_vocabulary_baseline_is_scored_beside_free_predictions(project: Path) -> None:
    from novic.baseline import read_vocab_embeddings
    from novic.dictionary import nouns_fingerprint

    vocab = project / "results/vocab/ft9.parquet"
    cache = read_vocab_embeddings(project / NOUN_CACHE)
    assert cache.meta["novic.vocab_sha256"] == nouns_fingerprint(vocab)
    info = json.loads((project / "results/embedders/tiny.json").read_text())
    assert cache.meta["novic.embedder_sha256"] == info["sha256"]
    assert len(cache.nouns) == pq.read_metadata(vocab).num_rows
    fashion = json.loads((project / f"results/eval/{RUN}/fashion_mnist.json").read_text())
    wv = fashion["whole_vocab"]
    assert wv["nouns"] == len(cache.nouns) and wv["prompts"] == "imagenet"
    assert 0 <= wv["top1"] <= wv["top5"] <= 1
    assert wv["timings"]["ms_per_image"] >= 0 and wv["timings"]["decoder_ms_per_image"] > 0
    photos = json.loads((project / f"results/eval/{RUN}/sample_photos.json").read_text())
    assert photos["whole_vocab"]["open_vocab"]["top1"]["images"] == 5
    log = (project / "results/logs/vocab_embeddings/tiny/ft9/imagenet.log").read_text()
    assert "nouns/s" in log and "ETA" in log


def test_the_noun_cache_is_rebuilt_only_for_another_embedder_vocabulary_or_prompt_set(
    project: Path,
) -> None:
    assert NOUN_CACHE not in dry_run(project, {"eval": {"whole_vocab": False}})
    assert dry_run(project, {"embeddings": {"batch_size": 7}}) == set()
    prompts = dry_run(project, {"eval": {"benchmarks": {"fashion_mnist": {"prompts": "simple"}}}})
    assert {p for p in prompts if "vocab_embeddings" in p} == {
        "results/vocab_embeddings/tiny/ft9/simple.parquet"
    }
    assert NOUN_CACHE in dry_run(project, {"embedders": {"tiny": {"tiny": {"seed": 1}}}})
    other = dry_run(project, {"runs": {RUN: {"threshold": 12}}})
    assert "results/vocab_embeddings/tiny/ft12/imagenet.parquet" in other
    assert NOUN_CACHE not in other


def test_report_builds_and_says_what_a_random_embedder_means(project: Path) -> None:
    report = project / "report.html"
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[project / TEST_CONFIG]),
            snakefile=project / "Snakefile",
            workdir=project,
        )
        dag = workflow.dag(DAGSettings(targets=frozenset(TARGETS)))
        dag.create_report(reporter="html", report_settings=ReportSettings(path=report))
    html = report.read_text()
    assert "uses a random-weight CLIP" in html and "chance level" in html
    for name in ("metrics.csv", "training.png", "accuracy.png", "modality_gap.png",
                 "fashion_mnist.samples.png", "runs.csv", "runs.png", "paper_table1.csv",
                 "paper_table2.csv"):  # fmt: skip
        assert name in html
    assert "Runs compared" in html and "central ablation" in html
    assert "Paper tables" in html and "resources/paper_results.yaml" in html


def test_nothing_left_to_do(project: Path) -> None:
    assert dry_run(project) == set()


def test_a_decoding_change_reevaluates_without_retraining(project: Path) -> None:
    updated = dry_run(project, {"eval": {"gencfg": "beam_k5_vnone_gn_t1_a0"}})
    assert updated == EVAL_OUTPUTS


def test_a_benchmark_change_reevaluates_that_benchmark_only(project: Path) -> None:
    updated = dry_run(project, {"eval": {"benchmarks": {"fashion_mnist": {"limit": 30}}}})
    assert updated == {
        *(f"results/eval/{RUN}/fashion_mnist{e}" for e in (".json", ".predictions.json",
                                                           ".samples.png")),
        *(p for p in EVAL_OUTPUTS if p.startswith("results/report/")),
    }  # fmt: skip


def test_the_gpu_jobs_record_their_device(project: Path, capsys) -> None:
    from novic.smoke import main, recorded_devices, wrong_devices

    found = recorded_devices([RUN], ["fashion_mnist", "sample_photos"], project / "results")
    shards = [p for p in found if p.endswith(".parquet")]
    chunks = [p for p in found if " chunk " in p]
    nouns = [p for p in found if p.endswith("whole-vocabulary noun embeddings")]
    assert len(shards) >= 2 and len(chunks) >= 2 and len(nouns) == 2  # both image benchmarks
    assert len(found) == len(shards) + len(chunks) + 3 + len(nouns)
    assert set(found.values()) == {"cpu"} and wrong_devices(found, "cpu") == {}
    assert wrong_devices(found, "cuda") == found
    args = ["--runs", RUN, "--benchmarks", "fashion_mnist", "--results", str(project / "results")]
    assert main([*args, "--expect", "cpu"]) == 0
    assert main([*args, "--expect", "cuda"]) == 1
    assert "ran on cpu, not cuda" in capsys.readouterr().err
    assert main(["--runs", "missing_run", "--results", str(project / "results")]) == 2


def test_batch_size_and_a_gpu_reevaluate_nothing(project: Path) -> None:
    assert dry_run(project, {"eval": {"batch_size": 7}}, resources={"gpu": 1}) == set()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"eval": {"gencfg": "beam_k10"}}, r"eval\.gencfg"),
        ({"eval": {"class_gencfg": "greedy_k3_vnone_gp_t1_a0"}}, r"eval\.class_gencfg.*k must"),
        ({"eval": {"benchmarks": {"x": {"kind": "mnist", "root": "."}}}}, r"benchmarks\.x\.kind"),
        ({"eval": {"benchmarks": {"text": {"kind": "images", "root": "."}}}}, "reserved"),
    ],
)
def test_bad_eval_settings_stop_before_any_job(project: Path, override: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        dry_run(project, override)


@pytest.mark.parametrize(
    ("preset", "run"),
    [
        (None, "siglip_b16_ft2"),
        ("presets/siglip_so400m_ft2.yaml", "siglip_so400m_ft2"),
        ("presets/dfn5b_h14_378_ft2.yaml", "dfn5b_h14_378_ft2"),
        ("presets/dfn5b_h14_378_ft0.yaml", "dfn5b_h14_378_ft0"),
    ],
)
def test_paper_recipes_dry_run_shows_every_evaluation_job(
    preset: str | None, run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no API key: a dry run needs none (the caption jobs read it when they start)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    workdir = copy_project(tmp_path)
    paper = ("imagenet1k", "food101", "tinyimagenet", "imagenette", "imagewoof", "imagenet_a",
             "imagenet_r", "world", "wiki", "val3k")  # fmt: skip
    for folder in ("cifar", *paper):
        (workdir / "data" / folder).mkdir(parents=True)  # the config check wants the folders
    for name in ("world", "wiki", "val3k"):
        (workdir / "data" / name / "annotations.json").write_text("{}")
    benches = ("fashion_mnist", "sample_photos", "cifar10", "cifar100", *paper)
    files = [
        *([preset] if preset else []),
        *override_files(workdir, {"build": {"benchmarks": list(benches)}})[1:],
    ]
    updated = set(snakemake(workdir, configfiles=files, dryrun=True))
    assert not any("siglip_b16_ft2" in p for p in updated) or run == "siglip_b16_ft2"
    for bench in benches:
        assert f"results/eval/{run}/{bench}.json" in updated
    assert f"results/eval/{run}/text.json" in updated
    held = {p for p in updated if p.endswith("/heldout.parquet") and "/embeddings/" in p}
    # the text side sees the held-out templates of M1-M3 and the held-out captions
    assert {p.split("/")[3] for p in held} == {"prompts", "captions"} and len(held) == 4
    assert f"results/report/{run}/metrics.csv" in updated
    assert f"results/models/{run}/decoder.pt" in updated
    assert "results/report/runs.csv" in updated


def test_default_target_compares_the_quickstart_runs(tmp_path: Path) -> None:
    """The quickstart's ablation (the same decoder with and without noise) side by side: rule
    compare_runs is in the default target's DAG, after both runs' evaluations."""
    workdir = copy_project(tmp_path)
    updated = set(snakemake(workdir, configfiles=["presets/quickstart.yaml"], dryrun=True))
    assert {"results/report/runs.csv", "results/report/runs.png"} <= updated
    assert {"results/report/paper_table1.csv", "results/report/paper_table2.csv"} <= updated
    assert {
        f"results/eval/{run}/{name}.json"
        for run in ("minilm_ft12", "minilm_ft12_clean")
        for name in ("fashion_mnist", "text")
    } <= updated


def test_no_comparison_without_evaluation(tmp_path: Path) -> None:
    workdir = copy_project(tmp_path)
    files = override_files(workdir, {"build": {"evaluate": False}})
    updated = set(snakemake(workdir, configfiles=files, dryrun=True))
    assert "results/models/tiny_ft9/decoder.pt" in updated
    assert not any(p.startswith(("results/report/", "results/eval/")) for p in updated)
