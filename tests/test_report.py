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


def write_evals(run: str, r: dict, folder: Path) -> list[Path]:
    """Write a run's benchmark metrics as the evaluation does, one JSON per benchmark."""
    evals = []
    for e in r["evals"]:
        evals.append(folder / f"{run}.{e['benchmark']}.json")
        evals[-1].write_text(json.dumps(e))
    return evals


def test_compare_runs_reads_the_metrics_files(runs: dict, tmp_path: Path) -> None:
    paths: dict[str, dict] = {}
    for run, r in runs.items():
        evals = write_evals(run, r, tmp_path)
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


# --- the paper's tables -----------------------------------------------------------------------

PAPER_FILE = Path(__file__).parents[1] / report.PAPER_RESULTS
SIGLIP = {"hub": "timm/ViT-B-16-SigLIP"}


def open_vocab_eval(benchmark: str, score: float, counts: dict[str, int]) -> dict:
    """The metrics of an annotated benchmark with the category counts of its top-1 answers."""
    images = sum(counts.values())
    top1 = {"images": images, "score": score, "primary_score": score, "overall_score": score - 0.1}
    return {
        "benchmark": benchmark,
        "evaluated": images,
        "free": {"gencfg": "beam"},
        "open_vocab": {"top1": top1 | {"counts": counts}, "top5": {"score": score + 0.1}},
    }


@pytest.fixture
def paper() -> dict:
    return report.load_paper_results(PAPER_FILE)


def test_the_paper_results_file_parses_and_every_entry_names_its_source(paper: dict) -> None:
    import yaml

    doc = yaml.safe_load(PAPER_FILE.read_text())
    assert "WACV 2025" in doc["paper"]
    for entry in doc["entries"]:  # the paper's table, and its column or row
        source = entry["source"]
        assert source.startswith("Table ") and ("column" in source or "row" in source), source
    assert paper[("timm/ViT-B-16-SigLIP", 2, "imagenet1k", "guided_top1")] == {
        "value": 68.11,
        "source": "Table 1, column FT2 (NOVIC guided by the class list), SigLIP B/16",
    }
    assert paper[("timm/ViT-B-16-SigLIP", None, "cifar10", "zero_shot_top1")]["value"] == 92.33
    assert paper[("timm/ViT-B-16-SigLIP", 2, "val3k", "open_correct_llm")]["value"] == 72.90
    assert paper[("apple/DFN5B-CLIP-ViT-H-14-378", 0, "wiki", "open_score_llm")]["value"] == 74.48
    assert {m for *_, m in paper} == set(report.PAPER_MEASURES)
    tables = {v["source"].split(",")[0] for v in paper.values()}
    assert tables == {"Table 1", "Table 2", "Table 4"}


def test_paper_tables_put_the_papers_numbers_beside_a_paper_embedders_run(paper: dict) -> None:
    imagenet = labelled_eval("imagenet1k", 0.76, 0.5, 50.0)
    imagenet["whole_vocab"] = {"top1": 0.3}
    cifar = labelled_eval("cifar10", 0.9, 0.6, 50.0)
    del cifar["guided"]  # a missing block: blank cells, the paper's numbers still there
    world = open_vocab_eval("world", 0.75, {"correct_primary": 6, "close_primary": 2,
                                            "incorrect": 1, "missing": 1})  # fmt: skip
    val3k = open_vocab_eval("val3k", 0.7, {"correct_primary": 7, "close_primary": 1,
                                           "incorrect": 2})  # fmt: skip
    runs = {"paper": {"embedder": {"hub": "hf-hub:timm/ViT-B-16-SigLIP"}, "threshold": 2,
                      "evals": [imagenet, cifar, world, val3k]}}  # fmt: skip
    table1, table2 = report.paper_table_rows(runs, paper)
    assert [r["benchmark"] for r in table1] == ["imagenet1k", "cifar10"]
    assert [r["benchmark"] for r in table2] == ["world", "val3k"]
    top = table1[0]
    assert top["embedder"] == "timm/ViT-B-16-SigLIP" and top["vocabulary"] == "FT2"
    assert top["zero-shot top-1 (ceiling)"] == "76.00" and top["paper: zero-shot top-1"] == "75.91"
    assert top["class-list top-1"] == "66.00" and top["paper: class-list top-1"] == "68.11"
    assert top["free top-1"] == "50.00" and top["whole-vocab top-1"] == "30.00"
    assert top["open-vocab score"] == "" and top["whole-vocab open-vocab score"] == ""
    assert (
        top["paper source"].startswith("Table 1, column CLIP")
        and "column FT2" in (top["paper source"])
    )
    assert table1[1]["class-list top-1"] == "" and table1[1]["paper: class-list top-1"] == "90.77"
    w, v = table2
    assert w["images"] == 10 and w["open-vocab score"] == "75.00"
    assert w["overall score (specificity)"] == "65.00" and w["open-vocab top-5 score"] == "85.00"
    assert w["correct"] == "60.00" and w["correct + close"] == "80.00"
    assert w["unannotated answers"] == 1 and w["whole-vocab open-vocab score"] == ""
    assert w["paper: open-vocab score (human annotations)"] == "78.92"
    assert w["paper: open-vocab score (LLM annotations)"] == ""  # the paper has no World-L
    assert w["paper source"].startswith("Table 4, row FT2")
    assert v["correct"] == "70.00" and v["paper: correct (LLM annotations)"] == "72.90"
    assert v["paper: correct + close (LLM annotations)"] == "74.35"
    assert v["paper: open-vocab score (human annotations)"] == ""


def test_paper_tables_show_no_paper_numbers_where_the_paper_gives_none(paper: dict) -> None:
    fashion = labelled_eval("fashion_mnist", 0.8, 0.4, 50.0)
    runs = {
        "tiny": {"embedder": {"tiny": {"seed": 0}}, "embedder_key": "tiny", "threshold": 2,
                 "evals": [labelled_eval("imagenet1k", 0.1, 0.0, None), photos_eval(0.2)]},
        "ft12": {"embedder": SIGLIP, "threshold": 12, "evals": [fashion,
                 labelled_eval("imagenet1k", 0.7, 0.4, None)]},
        "trained": {"embedder": {"tiny": {"seed": 0}}, "threshold": 2,  # its metrics' spec wins
                    "evals": [labelled_eval("imagenet1k", 0.7, 0.4, None) | {"embedder": SIGLIP}]},
    }  # fmt: skip
    table1, table2 = report.paper_table_rows(runs, paper)
    assert [(r["run"], r["benchmark"]) for r in table1] == [
        ("tiny", "imagenet1k"), ("ft12", "fashion_mnist"), ("ft12", "imagenet1k"),
        ("trained", "imagenet1k"),
    ]  # fmt: skip
    tiny, fashion_row, ft12, trained = table1
    assert tiny["embedder"] == "tiny" and tiny["paper: class-list top-1"] == ""
    assert tiny["paper: zero-shot top-1"] == "" and tiny["paper source"] == ""
    assert fashion_row["paper: zero-shot top-1"] == "" and fashion_row["paper source"] == ""
    # another vocabulary: the zero-shot ceiling (any vocabulary) but no class-list number
    assert ft12["paper: zero-shot top-1"] == "75.91" and ft12["paper: class-list top-1"] == ""
    assert trained["embedder"] == "timm/ViT-B-16-SigLIP"
    assert trained["paper: class-list top-1"] == "68.11"
    assert [r["benchmark"] for r in table2] == ["sample_photos"]
    assert table2[0]["open-vocab score"] == "20.00" and table2[0]["correct"] == ""
    assert all(table2[0][f"paper: {m}"] == "" for m in report.PAPER_MEASURES.values()
               if m.startswith(("open", "correct")))  # fmt: skip


def test_compare_runs_writes_the_paper_tables(runs: dict, tmp_path: Path) -> None:
    paths = {
        run: {"noise": r["noise"], "embedder": SIGLIP, "threshold": 2,
              "evals": write_evals(run, r, tmp_path)}
        for run, r in runs.items()
    }  # fmt: skip
    outputs = {name: tmp_path / f"{name}.csv" for name in ("table", "paper_table1",
                                                           "paper_table2")}  # fmt: skip
    outputs["figure"] = tmp_path / "runs.png"
    report.compare_runs(paths, outputs, PAPER_FILE)
    for name, columns, n in (("paper_table1", report.TABLE1_COLUMNS, 2),
                             ("paper_table2", report.TABLE2_COLUMNS, 2)):  # fmt: skip
        with open(outputs[name], newline="") as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == columns and len(rows) == n
    report.compare_runs({}, outputs, PAPER_FILE)  # no run: the header alone
    assert outputs["paper_table1"].read_text().splitlines() == [",".join(report.TABLE1_COLUMNS)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entries: []", "non-empty list `entries`"),
        ("entries: [{embedder: a/b, values: {x: {guided_top1: 1}}}]", "entries[0].source: None"),
        ("entries: [{source: Table 1, embedder: ab, values: {x: {guided_top1: 1}}}]",
         "entries[0].embedder: 'ab'"),
        ("entries: [{source: Table 1, embedder: a/b, values: {x: {top9: 1}}}]",
         "entries[0].values.x.top9: unknown measure"),
        ("entries: [{source: Table 1, embedder: a/b, values: {x: {guided_top1: 120}}}]",
         "entries[0].values.x.guided_top1: 120 is not a percentage"),
        ("entries: [{source: Table 1, embedder: a/b, values: {x: {guided_top1: high}}}]",
         "entries[0].values.x.guided_top1: 'high' is not a number"),
        ("entries: [{source: Table 1, embedder: a/b, threshold: x, values: {x: {guided_top1: 1}}}]",
         "entries[0].threshold: 'x'"),
        ("entries:\n- {source: Table 1, embedder: a/b, values: {x: {guided_top1: 1}}}\n"
         "- {source: Table 4, embedder: a/b, values: {x: {guided_top1: 1}}}",
         "entries[1].values.x.guided_top1: given twice (also by 'Table 1')"),
    ],
)  # fmt: skip
def test_a_bad_paper_results_file_names_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "paper.yaml"
    path.write_text(text)
    with pytest.raises(report.PaperResultsError) as err:
        report.load_paper_results(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_bad_metrics_name_the_file_and_the_key(tmp_path: Path, paper: dict) -> None:
    bad = labelled_eval("cifar10", 0.9, 0.5, None)
    bad["guided"]["top1"] = "ninety"
    path = tmp_path / "cifar10.json"
    path.write_text(json.dumps(bad))
    runs = {"r": {"embedder": SIGLIP, "threshold": 2, "evals": [report._load_eval(path)]}}
    with pytest.raises(report.PaperResultsError, match=r"cifar10\.json: guided\.top1: 'ninety'"):
        report.paper_table_rows(runs, paper)
    runs["r"]["evals"][0]["guided"]["top1"] = 1.5
    with pytest.raises(report.PaperResultsError, match=r"guided\.top1: 1\.5 is not a share"):
        report.paper_table_rows(runs, paper)
    path.write_text("[1, 2]")
    with pytest.raises(report.PaperResultsError, match="expected a JSON object"):
        report._load_eval(path)
    bad = labelled_eval("cifar10", 0.9, 0.5, None)
    del bad["benchmark"]
    path.write_text(json.dumps(bad))
    runs["r"]["evals"] = [report._load_eval(path)]
    with pytest.raises(report.PaperResultsError, match=r"cifar10\.json: run r: no `benchmark`"):
        report.paper_table_rows(runs, paper)
