"""The report's figures and tables: the sample figure drawn from thumbnails, whatever the size of
the images; the modality-gap figure's legend; the runs compared side by side (table and figure)
on small synthetic metrics of the shapes novic.evaluate writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from novic import report
from novic.report import (
    SAMPLE_SIDE,
    compare_rows,
    compare_runs,
    comparison_plot,
    modality_gap_plot,
    noise_label,
    sample_grid,
)

NOISE = {
    "scheme": "GaussElemUniformAngle", "vec_norm": 3.25, "vec_angle": 52, "angle_min": 32,
    "angle_max": 53, "angle_std": 10, "mix_ratio": 0.15,
}  # fmt: skip


def histogram(center: float | None) -> list[int]:
    """1-degree bin counts of 100 angles at `center` (none: an empty histogram)."""
    counts = [0] * 180
    if center is not None:
        counts[int(center)] = 100
    return counts


def labelled_eval(benchmark: str, ceiling: float, free: float, noise_deg: float | None) -> dict:
    """The metrics of a labelled benchmark (novic.evaluate.evaluate_images)."""
    angles = {"matching": 60.0, "random": 75.0, "noise": noise_deg}
    return {
        "benchmark": benchmark,
        "evaluated": 40,
        "zero_shot": {"top1": ceiling, "top5": 0.9, "chance": 0.1},
        "guided": {"top1": ceiling - 0.1, "top5": 0.8, "classes_unmapped": []},
        "free": {"gencfg": "beam", "top1": free, "top5": free + 0.1, "semantic_similarity": 0.5},
        "modality_gap": {
            **{
                f"{k}_deg": {"mean": float("nan") if v is None else v, "n": 0 if v is None else 100}
                for k, v in angles.items()
            },
            "histograms": {
                "bins_deg": list(range(181)),
                **{k: histogram(v) for k, v in angles.items()},
            },
        },
    }


def photos_eval(score: float) -> dict:
    """The metrics of an unlabelled benchmark scored against its annotations."""
    return {
        "benchmark": "sample_photos",
        "evaluated": 5,
        "free": {"gencfg": "beam"},
        "open_vocab": {"top1": {"score": score, "overall_score": score}},
    }


def text_eval(top1: float) -> dict:
    """The text side's metrics (novic.evaluate.evaluate_text)."""
    return {
        "sources": {
            "m1": {"rows": 50, "top1": top1, "top5": 0.9},
            "captions": {"rows": 20, "top1": top1 - 0.1, "top5": 0.8},
        }
    }


@pytest.fixture
def runs() -> dict[str, dict]:
    """The ablation: the same decoder with and without noise (as compare_rows reads them)."""
    return {
        "noisy": {
            "noise": NOISE,
            "evals": [labelled_eval("fashion_mnist", 0.8, 0.4, 50.0), photos_eval(0.3)],
            "text": text_eval(0.6),
        },
        "clean": {
            "noise": NOISE | {"scheme": "none"},
            "evals": [labelled_eval("fashion_mnist", 0.8, 0.1, None), photos_eval(0.1)],
            "text": text_eval(0.7),
        },
    }


def test_sample_grid_draws_thumbnails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.axes import Axes

    drawn: list[tuple[int, int]] = []
    real = Axes.imshow

    def spy(self: Axes, image: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append(image.size)
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(Axes, "imshow", spy)
    images = [Image.new("RGB", (4000, 3000), "red"), Image.new("RGB", (100, 50), "blue")]
    samples = [
        {"label": "apple", "predictions": [{"noun": "apple", "prob": 0.9}]},
        {"predictions": [{"noun": "sky", "prob": 0.5}, {"noun": "sea", "prob": 0.2}]},
    ]
    sample_grid(images, samples, tmp_path / "samples.png", "two samples")
    assert drawn == [(SAMPLE_SIDE, 288), (100, 50)]  # the big one shrunk, the small one as is
    assert images[0].size == (4000, 3000)  # the caller's image is untouched
    assert Image.open(tmp_path / "samples.png").size[0] > 0


def test_noise_label_states_scheme_and_strength() -> None:
    assert noise_label(NOISE) == (
        "GaussElemUniformAngle",
        "typical angle 52 deg; 15% uniform 32-53 deg",
    )
    assert noise_label(NOISE | {"scheme": "GaussElem", "vec_angle": None}) == (
        "GaussElem",
        "vec_norm 3.25",
    )
    assert noise_label(NOISE | {"scheme": "none"}) == ("none", "")


def test_compare_rows_one_row_per_run_and_benchmark_or_text_source(runs: dict) -> None:
    rows = compare_rows(runs)
    assert [(r["run"], r["benchmark"]) for r in rows] == [
        (run, name)
        for run in ("noisy", "clean")
        for name in (
            "fashion_mnist",
            "sample_photos",
            "text: held-out m1 templates",
            "text: held-out captions",
        )
    ]
    noisy, photos, m1, captions = rows[:4]
    assert noisy["noise"] == "GaussElemUniformAngle" and rows[4]["noise"] == "none"
    assert noisy["zero-shot top-1 (ceiling)"] == "80.00" and noisy["free top-1"] == "40.00"
    assert noisy["free top-1 / ceiling"] == "50.00"  # 0.4 of a 0.8 ceiling
    assert rows[4]["free top-1 / ceiling"] == "12.50"  # 0.1 of 0.8
    assert noisy["chance"] == "10.00" and noisy["semantic similarity"] == "50.00"
    assert noisy["image-text angle (deg)"] == "60.0" and noisy["noise angle (deg)"] == "50.0"
    assert rows[4]["noise angle (deg)"] == ""  # no noise: NaN angle, left blank
    assert photos["open-vocab score"] == "30.00" and photos["free top-1 / ceiling"] == ""
    assert m1["text top-1"] == "60.00" and m1["text top-5"] == "90.00" and m1["images"] == 50
    assert captions["text top-1"] == "50.00" and "free top-1" not in captions
    assert rows[6]["text top-1"] == "70.00"


def test_share_of_ceiling_is_blank_without_a_ceiling() -> None:
    rows = compare_rows({"r": {"evals": [labelled_eval("b", 0.0, 0.0, None)], "text": None}})
    assert len(rows) == 1 and rows[0]["free top-1 / ceiling"] == "" and rows[0]["noise"] == "none"


def test_comparison_plot_is_written(runs: dict, tmp_path: Path) -> None:
    comparison_plot(runs, tmp_path / "runs.png", "runs compared")
    width, height = Image.open(tmp_path / "runs.png").size
    assert width > height > 0
    comparison_plot({}, tmp_path / "empty.png", "no runs")  # nothing evaluated: still a figure
    assert (tmp_path / "empty.png").is_file()


def test_compare_runs_reads_the_metrics_files(runs: dict, tmp_path: Path) -> None:
    paths: dict[str, dict] = {}
    for run, r in runs.items():
        evals = []
        for e in r["evals"]:
            evals.append(tmp_path / f"{run}.{e['benchmark']}.json")
            evals[-1].write_text(json.dumps(e))
        (tmp_path / f"{run}.text.json").write_text(json.dumps(r["text"]))
        paths[run] = {"noise": r["noise"], "evals": evals, "text": tmp_path / f"{run}.text.json"}
    outputs = {"table": tmp_path / "runs.csv", "figure": tmp_path / "runs.png"}
    compare_runs(paths, outputs)
    with open(outputs["table"], newline="") as f:
        table = list(csv.DictReader(f))
    assert table == csv_ready(runs)
    assert Image.open(outputs["figure"]).size[0] > 0


def csv_ready(runs: dict) -> list[dict]:
    """compare_rows as its CSV reads back: every column in every row, as text."""
    rows = compare_rows(runs)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return [{k: str(row.get(k, "")) for k in keys} for row in rows]


def test_modality_gap_legend_has_the_means_and_names_the_paper_lines(
    runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[Any] = []
    monkeypatch.setattr(report, "_save", lambda fig, path: saved.append(fig))
    modality_gap_plot(runs["noisy"]["evals"] + runs["clean"]["evals"], tmp_path / "gap.png", "t")
    noisy, clean = ([t.get_text() for t in ax.get_legend().get_texts()] for ax in saved[0].axes)
    assert noisy[:3] == [
        "image vs own class text, mean 60.0\N{DEGREE SIGN}",
        "image vs other class texts, mean 75.0\N{DEGREE SIGN}",
        "text vs noisy text (training noise), mean 50.0\N{DEGREE SIGN}",
    ]
    assert clean[2] == "text vs noisy text: no training noise"
    assert all("paper, SigLIP B/16" in t for t in noisy[3:]) and len(noisy) == 5


def test_the_whole_vocabulary_baseline_sits_beside_the_free_answer(tmp_path: Path) -> None:
    labelled = labelled_eval("cifar10", 0.9, 0.4, 30.0)
    labelled["evaluated"] = 40
    labelled["timings"] = {"decode_free_s": 0.4, "images_per_s": 50.0}
    labelled["whole_vocab"] = {
        "nouns": 1000, "top1": 0.25, "top5": 0.5, "semantic_similarity": 0.6,
        "timings": {"embed_nouns_s": 12.34, "ms_per_image": 0.125},
    }  # fmt: skip
    photos = photos_eval(0.7)
    photos["whole_vocab"] = {"open_vocab": {"top1": {"score": 0.35}}}
    rows = report.metrics_rows([labelled, photos], None)
    assert rows[0]["free top-1"] == "40.00" and rows[0]["whole-vocab top-1"] == "25.00"
    assert rows[0]["whole-vocab top-5"] == "50.00"
    assert rows[0]["whole-vocab semantic similarity"] == "60.00"
    assert rows[0]["free ms/image"] == "10.000" and rows[0]["whole-vocab ms/image"] == "0.125"
    assert rows[0]["whole-vocab noun embedding (s, once)"] == "12.3"
    assert rows[1]["whole-vocab open-vocab score"] == "35.00" and rows[1]["whole-vocab top-1"] == ""
    compared = compare_rows({"r": {"evals": [labelled, photos], "text": None}})
    assert [r["whole-vocab top-1"] for r in compared] == ["25.00", ""]
    assert [r["whole-vocab open-vocab score"] for r in compared] == ["", "35.00"]
    report.accuracy_vs_ceiling([labelled], tmp_path / "accuracy.png", "t")
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
