"""Figures and tables of the HTML report (`snakemake --report`), drawn with matplotlib.

Per run: the metrics table (every benchmark: zero-shot ceiling, NOVIC with the class list, free
predictions, semantic similarity, open-vocabulary points, beside each the whole-vocabulary
zero-shot CLIP baseline and its cost; the text side), training curves (loss,
teacher-forced token accuracy, learning rate per chunk), accuracy against the zero-shot ceiling,
the modality gap next to the training noise angles, and sample images with their predictions.
Across runs: one table and one figure that put the runs side by side (e.g. the paper's ablation,
the same decoder trained with and without noise), and the paper's Tables 1 and 2 for every run,
the paper's published numbers (resources/paper_results.yaml) beside a run that uses the paper's
embedder and vocabulary.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from novic.io import atomic_path

PAPER_GAP_DEG = {"matching": 84.8, "random": 92.9}  # SigLIP B/16 on ImageNet-1k (reference)
SAMPLE_SIDE = 384  # sample images are drawn from thumbnails at most this wide and high


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)


def _thumbnail(image: Any, side: int = SAMPLE_SIDE) -> Any:
    """A PIL image shrunk to fit side x side (a new small image; the original is untouched)."""
    w, h = image.size
    scale = side / max(w, h)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, reducing_gap=2.0)


def sample_grid(
    images: Sequence[Any], samples: Sequence[Mapping[str, Any]], path: str | Path, title: str
) -> None:
    """Images (PIL, drawn from SAMPLE_SIDE thumbnails) with their true label (if any) and top-3
    predictions with probabilities."""
    plt = _pyplot()
    n = max(len(images), 1)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, sample in zip(axes.flat, images, samples, strict=False):
        ax.imshow(_thumbnail(image))
        lines = [f"true: {sample['label']}"] if sample.get("label") else []
        lines += [f"{p['noun']} ({p['prob']:.2g})" for p in sample["predictions"][:3]]
        ax.set_title("\n".join(lines), fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def training_curves(metrics_jsonl: str | Path, path: str | Path, title: str) -> None:
    """Loss, token accuracy (raw and smoothed) and learning rate per training chunk."""
    plt = _pyplot()
    rows = [json.loads(x) for x in Path(metrics_jsonl).read_text().splitlines() if x.strip()]
    chunk = [r["chunk"] for r in rows]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    a.plot(chunk, [r["loss"] for r in rows])
    a.set(xlabel="chunk", ylabel="loss", title="training loss")
    b.plot(chunk, [r["accuracy"] for r in rows], label="chunk")
    b.plot(chunk, [r["accuracy_smoothed"] for r in rows], label="smoothed")
    b.set(xlabel="chunk", ylabel="token accuracy", title="teacher-forced token accuracy")
    b.legend()
    c.plot(chunk, [r["lr"] for r in rows])
    c.set(xlabel="chunk", ylabel="learning rate", title="learning rate")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def accuracy_vs_ceiling(evals: Sequence[Mapping[str, Any]], path: str | Path, title: str) -> None:
    """Top-1 per labelled benchmark: zero-shot CLIP (ceiling), NOVIC with the class list, free
    NOVIC predictions, zero-shot CLIP over the whole vocabulary (where it ran), and chance."""
    import numpy as np

    plt = _pyplot()
    labelled = [e for e in evals if "zero_shot" in e]
    names = [e["benchmark"] for e in labelled] or ["(no labelled benchmark)"]
    series = {
        "zero-shot CLIP (ceiling)": [e["zero_shot"]["top1"] for e in labelled],
        "NOVIC, class list": [e["guided"]["top1"] for e in labelled],
        "NOVIC, free": [e["free"].get("top1", 0.0) for e in labelled],
        "CLIP zero-shot, all nouns": [e.get("whole_vocab", {}).get("top1") for e in labelled],
        "chance": [e["zero_shot"]["chance"] for e in labelled],
    }
    series = {k: v for k, v in series.items() if any(x is not None for x in v) or not v}
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(names) + 2), 3.4), layout="constrained")
    x = np.arange(len(labelled))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        heights = [0.0 if v is None else v for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=label)
    ax.set_xticks(x, names[: len(labelled)])
    ax.set(ylabel="top-1 accuracy", ylim=(0, 1), title=title)
    ax.legend(fontsize=7)
    _save(fig, path)


def modality_gap_plot(evals: Sequence[Mapping[str, Any]], path: str | Path, title: str) -> None:
    """Histograms of this run's image-text angles (own and other classes) and of its training
    noise angles, their means in the legend; grey lines: the paper's SigLIP B/16 values."""
    import numpy as np

    plt = _pyplot()
    withgap = [e for e in evals if "modality_gap" in e]
    n = max(len(withgap), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4.4), squeeze=False, layout="constrained")
    for ax, e in zip(axes.flat, withgap, strict=False):
        gap = e["modality_gap"]
        h = gap["histograms"]
        centers = np.array(h["bins_deg"][:-1]) + 0.5
        for key, label in (
            ("matching", "image vs own class text"),
            ("random", "image vs other class texts"),
            ("noise", "text vs noisy text (training noise)"),
        ):
            counts = np.array(h[key], dtype=float)
            if counts.sum():
                mean = gap.get(f"{key}_deg", {}).get("mean")
                label += "" if mean is None else f", mean {mean:.1f}\N{DEGREE SIGN}"
                ax.plot(centers, counts / counts.sum(), label=label)
            elif key == "noise":  # keeps the legend's colours: trained without noise
                ax.plot([], [], label="text vs noisy text: no training noise")
        for key, style, label in (
            ("matching", ":", "paper, SigLIP B/16: own class"),
            ("random", "--", "paper, SigLIP B/16: other class"),
        ):
            deg = PAPER_GAP_DEG[key]
            label = f"{label} {deg}\N{DEGREE SIGN}"
            ax.axvline(deg, color="grey", linestyle=style, linewidth=0.8, label=label)
        ax.set(xlabel="angle (degrees)", ylabel="share", title=e["benchmark"], xlim=(0, 180))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below the axes
    if not withgap:
        axes.flat[0].axis("off")
        axes.flat[0].text(0.5, 0.5, "no labelled benchmark", ha="center")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _pct(x: Any) -> str:
    """A share as a percentage with two decimals ("" for none or NaN)."""
    return "" if x is None or math.isnan(float(x)) else f"{100 * float(x):.2f}"


def _deg(stats: Mapping[str, Any] | None) -> str:
    """The mean of an angle summary of novic.evaluate.modality_gap ("" for none or NaN)."""
    mean = (stats or {}).get("mean")
    return "" if mean is None or math.isnan(float(mean)) else f"{float(mean):.1f}"


def _num(x: Any, digits: int) -> str:
    """A number with `digits` decimals ("" for none or NaN)."""
    return "" if x is None or math.isnan(float(x)) else f"{float(x):.{digits}f}"


def _ms(seconds: Any, e: Mapping[str, Any]) -> str:
    """Milliseconds per evaluated image of a total in seconds ("" for none)."""
    n = e.get("evaluated") or 0
    return "" if seconds is None or not n else f"{1000 * float(seconds) / n:.3f}"


def _open_score(metrics: Mapping[str, Any]) -> Any:
    """The open-vocabulary top-1 score of a block of free answers (None where unscored)."""
    return metrics.get("open_vocab", {}).get("top1", {}).get("score")


def _text_name(source: str) -> str:
    """The table's name of a text-side source (held-out templates or captions)."""
    return f"text: held-out {source}" + ("" if source == "captions" else " templates")


def metrics_rows(
    evals: Sequence[Mapping[str, Any]], text: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per (benchmark or text source): the headline numbers in percent."""
    rows = []
    for e in evals:
        free, wv = e.get("free", {}), e.get("whole_vocab", {})
        ov = e.get("open_vocab", {}).get("top1", {})
        wv_cost = wv.get("timings", {})
        rows.append(
            {
                "benchmark": e["benchmark"],
                "images": e.get("evaluated", ""),
                "zero-shot top-1 (ceiling)": _pct(e.get("zero_shot", {}).get("top1")),
                "class-list top-1": _pct(e.get("guided", {}).get("top1")),
                "class-list top-5": _pct(e.get("guided", {}).get("top5")),
                "free top-1": _pct(free.get("top1")),
                "whole-vocab top-1": _pct(wv.get("top1")),
                "free top-5": _pct(free.get("top5")),
                "whole-vocab top-5": _pct(wv.get("top5")),
                "semantic similarity": _pct(free.get("semantic_similarity")),
                "whole-vocab semantic similarity": _pct(wv.get("semantic_similarity")),
                "open-vocab score": _pct(ov.get("score")),
                "whole-vocab open-vocab score": _pct(_open_score(wv)),
                "open-vocab overall (specificity)": _pct(ov.get("overall_score")),
                "open-vocab annotated by people": _pct(ov.get("shares", {}).get("human")),
                "open-vocab annotated by LLM": _pct(ov.get("shares", {}).get("llm")),
                "open-vocab not annotated": _pct(ov.get("shares", {}).get("missing")),
                "chance": _pct(e.get("zero_shot", {}).get("chance")),
                "unmapped classes": len(e.get("guided", {}).get("classes_unmapped", [])),
                "device": e.get("device", ""),
                "images/s": f"{e.get('timings', {}).get('images_per_s', 0):.1f}",
                "free ms/image": _ms(e.get("timings", {}).get("decode_free_s"), e),
                "whole-vocab ms/image": _num(wv_cost.get("ms_per_image"), 3),
                "whole-vocab nouns": wv.get("nouns", ""),
                "whole-vocab noun embedding (s, once)": _num(wv_cost.get("embed_nouns_s"), 1),
            }
        )
    for name, s in (text or {}).get("sources", {}).items():
        rows.append(
            {
                "benchmark": _text_name(name),
                "images": s.get("rows", 0),
                "free top-1": _pct(s.get("top1")),
                "free top-5": _pct(s.get("top5")),
                "device": (text or {}).get("device", ""),
            }
        )
    return rows


def write_table(
    rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] = ()
) -> None:
    """A CSV table (the report renders it): `columns` first, then any other key of the rows."""
    keys: list[str] = list(columns)
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys or ["benchmark"], restval="")
        writer.writeheader()
        writer.writerows(rows)


def with_llm_scores(
    evals: Sequence[dict[str, Any]], scores: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`evals` with the open-vocabulary blocks of each benchmark's score_open_vocab result."""
    by_bench = {s["benchmark"]: s for s in scores}
    out = []
    for e in evals:
        s = by_bench.get(e.get("benchmark", ""))
        if s is not None:
            e = {**e, "open_vocab": s["open_vocab"]}
            if "whole_vocab" in s and "whole_vocab" in e:
                e["whole_vocab"] = {**e["whole_vocab"], **s["whole_vocab"]}
        out.append(e)
    return out


def run_report(
    run: str,
    eval_paths: Sequence[str | Path],
    text_path: str | Path | None,
    train_metrics: str | Path | None,
    outputs: Mapping[str, str | Path],
    open_vocab_paths: Sequence[str | Path] = (),
) -> None:
    """Every per-run figure and the table (`outputs`: table, curves, accuracy, gap). The
    open-vocabulary scores of rule score_open_vocab (people's and the LLM's annotations), where
    given, replace the evaluation's own (people's only)."""
    evals = with_llm_scores(
        [json.loads(Path(p).read_text()) for p in eval_paths],
        [json.loads(Path(p).read_text()) for p in open_vocab_paths],
    )
    text = json.loads(Path(text_path).read_text()) if text_path else None
    write_table(metrics_rows(evals, text), outputs["table"])
    if train_metrics:
        training_curves(train_metrics, outputs["curves"], f"training of {run}")
    accuracy_vs_ceiling(evals, outputs["accuracy"], f"{run}: top-1 against the zero-shot ceiling")
    modality_gap_plot(evals, outputs["gap"], f"{run}: modality gap and training noise")


# --- runs compared ----------------------------------------------------------------------------


def noise_label(noise: Mapping[str, Any] | None) -> tuple[str, str]:
    """A run's noise scheme and its strength in words (from config runs.{run}.noise)."""
    noise = noise or {}
    scheme = str(noise.get("scheme", "none"))
    if noise.get("vec_angle") is not None:
        gauss = f"typical angle {noise['vec_angle']:g} deg"
    else:
        gauss = f"vec_norm {noise.get('vec_norm', 0):g}"
    span = f"{noise.get('angle_min', 0):g}-{noise.get('angle_max', 0):g} deg"
    strength = {
        "GaussElem": gauss,
        "GaussVec": gauss,
        "UniformAngle": span,
        "GaussAngle": f"std {noise.get('angle_std', 0):g} deg, max {noise.get('angle_max', 0):g}",
        "GaussElemUniformAngle": f"{gauss}; {noise.get('mix_ratio', 0):.0%} uniform {span}",
    }.get(scheme, "")
    return scheme, strength


def compare_rows(runs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per run and benchmark or text source, in percent.

    `runs`: run name -> {"noise": its config noise section, "evals": its benchmark metrics
    (novic.evaluate.evaluate_images), "text": its text-side metrics or None}. The free top-1 is
    also given as a share of the zero-shot ceiling (the same embeddings, scored with the class
    list), and beside it the whole-vocabulary zero-shot baseline's; the angles are this run's
    measured mean image-to-own-class and training-noise angles.
    """
    rows: list[dict[str, Any]] = []
    for run, r in runs.items():
        scheme, strength = noise_label(r.get("noise"))
        head = {"run": run, "noise": scheme, "noise strength": strength}
        for e in r.get("evals", []):
            zero_shot, free = e.get("zero_shot", {}), e.get("free", {})
            ceiling, top1 = zero_shot.get("top1"), free.get("top1")
            gap = e.get("modality_gap", {})
            rows.append(
                head
                | {
                    "benchmark": e["benchmark"],
                    "images": e.get("evaluated", ""),
                    "zero-shot top-1 (ceiling)": _pct(ceiling),
                    "class-list top-1": _pct(e.get("guided", {}).get("top1")),
                    "free top-1": _pct(top1),
                    "whole-vocab top-1": _pct(e.get("whole_vocab", {}).get("top1")),
                    "free top-1 / ceiling": _pct(
                        top1 / ceiling if top1 is not None and ceiling else None
                    ),
                    "semantic similarity": _pct(free.get("semantic_similarity")),
                    "open-vocab score": _pct(_open_score(e)),
                    "whole-vocab open-vocab score": _pct(_open_score(e.get("whole_vocab", {}))),
                    "text top-1": "",
                    "text top-5": "",
                    "chance": _pct(zero_shot.get("chance")),
                    "image-text angle (deg)": _deg(gap.get("matching_deg")),
                    "noise angle (deg)": _deg(gap.get("noise_deg")),
                }
            )
        for name, source in (r.get("text") or {}).get("sources", {}).items():
            rows.append(
                head
                | {
                    "benchmark": _text_name(name),
                    "images": source.get("rows", 0),
                    "text top-1": _pct(source.get("top1")),
                    "text top-5": _pct(source.get("top5")),
                }
            )
    return rows


def _bar_groups(runs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The figure's bar groups, image benchmarks first: label, panel ("image" or "text"), one
    value per run (None where the run lacks it), the ceiling per run, chance."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    n = len(runs)
    for ri, r in enumerate(runs.values()):
        for e in r.get("evals", []):
            if "zero_shot" in e:
                label, value = f"{e['benchmark']}\nfree top-1", e.get("free", {}).get("top1")
            elif "open_vocab" in e:
                label, value = (
                    f"{e['benchmark']}\nopen-vocab score",
                    e["open_vocab"]["top1"]["score"],
                )
            else:
                continue
            g = groups.setdefault(
                ("image", label), {"values": [None] * n, "ceilings": [None] * n, "chance": None}
            )
            g["values"][ri] = value
            if "zero_shot" in e:
                g["ceilings"][ri] = e["zero_shot"].get("top1")
                g["chance"] = e["zero_shot"].get("chance")
        for name, source in (r.get("text") or {}).get("sources", {}).items():
            label = _text_name(name).removeprefix("text: ").replace(" ", "\n", 1)
            g = groups.setdefault(
                ("text", label), {"values": [None] * n, "ceilings": [None] * n, "chance": None}
            )
            g["values"][ri] = source.get("top1")
    ordered = sorted(groups.items(), key=lambda item: item[0][0] != "image")
    return [{"panel": panel, "label": label, **g} for (panel, label), g in ordered]


def comparison_plot(runs: Mapping[str, Mapping[str, Any]], path: str | Path, title: str) -> None:
    """Grouped bars, one bar per run: free top-1 on each labelled image benchmark (the zero-shot
    ceiling a black tick on each bar, chance a dashed line), the open-vocabulary score on
    annotated unlabelled ones, and top-1 on each held-out text source. `runs` as compare_rows.
    """
    plt = _pyplot()
    groups = _bar_groups(runs)
    panels = [
        (panel, [g for g in groups if g["panel"] == panel])
        for panel in ("image", "text")
        if any(g["panel"] == panel for g in groups)
    ]
    n = max(len(runs), 1)
    fig, axes = plt.subplots(
        1,
        max(len(panels), 1),
        figsize=(max(6.0, 0.5 * n * len(groups) + 0.6 * len(groups) + 2), 4.0),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [len(gs) for _, gs in panels] or [1]},
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / n
    for ax, (panel, gs) in zip(axes.flat, panels, strict=False):
        for gi, g in enumerate(gs):
            for ri, run in enumerate(runs):
                value, ceiling = g["values"][ri], g["ceilings"][ri]
                x = gi - 0.4 + width * (ri + 0.5)
                if value is not None:
                    color = colors[ri % len(colors)]
                    ax.bar(x, value, width * 0.9, color=color, label=run)
                    inside = value > 0.15  # inside the bar's top: clear of the ceiling tick
                    ax.annotate(
                        f"{100 * value:.0f}%", (x, value), xytext=(0, -2 if inside else 1),
                        textcoords="offset points", ha="center", va="top" if inside else "bottom",
                        fontsize=7, color="white" if inside else "black",
                    )  # fmt: skip
                if ceiling is not None:
                    ax.hlines(
                        ceiling, x - 0.45 * width, x + 0.45 * width, color="black", linewidth=2,
                        label="zero-shot CLIP (ceiling)",
                    )  # fmt: skip
            if g["chance"] is not None:
                ax.hlines(
                    g["chance"], gi - 0.45, gi + 0.45, color="grey", linestyle="--",
                    linewidth=1, label="chance",
                )  # fmt: skip
        ax.set_xticks(range(len(gs)), [g["label"] for g in gs], fontsize=8)
        ax.set(ylim=(0, 1.1), xlim=(-0.6, len(gs) - 0.4))
        if panel == "image":
            ax.set(title="images (no class list)", ylabel="top-1 accuracy / score")
        else:
            ax.set(title="held-out text embeddings", ylabel="top-1 accuracy")
    legend: dict[str, Any] = {}  # one entry per label, over every panel
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(
            legend.values(), legend.keys(), loc="outside lower center", ncols=min(len(legend), 4),
            fontsize=8,
        )  # fmt: skip
    if not panels:
        axes.flat[0].axis("off")
        axes.flat[0].text(0.5, 0.5, "no evaluated run", ha="center")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _load_eval(path: str | Path) -> dict[str, Any]:
    """A benchmark's metrics JSON, remembering its file (`_source`) for error messages."""
    try:
        e = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PaperResultsError(f"{path}: cannot read the metrics: {exc}") from exc
    if not isinstance(e, dict):
        raise PaperResultsError(f"{path}: expected a JSON object, got {type(e).__name__}")
    return e | {"_source": str(path)}


def compare_runs(
    runs: Mapping[str, Mapping[str, Any]],
    outputs: Mapping[str, str | Path],
    paper_results: str | Path | None = None,
) -> None:
    """The cross-run table and figure (`outputs`: table, figure), and with `paper_results` (a
    resources/paper_results.yaml file) the paper's Tables 1 and 2 (`outputs`: paper_table1,
    paper_table2). `runs`: run name -> {"noise": its config noise section, "embedder": its
    embedder spec, "embedder_key", "threshold": its vocabulary, "evals": paths of its benchmark
    metrics, "text": path of its text-side metrics or None}."""
    loaded = {
        run: {
            **{k: r.get(k) for k in ("noise", "embedder", "embedder_key", "threshold")},
            "evals": [_load_eval(p) for p in r.get("evals", [])],
            "text": json.loads(Path(r["text"]).read_text()) if r.get("text") else None,
        }
        for run, r in runs.items()
    }
    write_table(compare_rows(loaded), outputs["table"])
    comparison_plot(
        loaded, outputs["figure"], "runs compared: free answers on images and held-out text"
    )
    if paper_results is not None:
        table1, table2 = paper_table_rows(loaded, load_paper_results(paper_results))
        write_table(table1, outputs["paper_table1"], TABLE1_COLUMNS)
        write_table(table2, outputs["paper_table2"], TABLE2_COLUMNS)


# --- the paper's tables -----------------------------------------------------------------------

PAPER_RESULTS = "resources/paper_results.yaml"  # the paper's published numbers (rule input)
PAPER_MEASURES = {
    "zero_shot_top1": "zero-shot top-1",
    "guided_top1": "class-list top-1",
    "open_score_human": "open-vocab score (human annotations)",
    "open_score_llm": "open-vocab score (LLM annotations)",
    "open_correct_llm": "correct (LLM annotations)",
    "open_correct_close_llm": "correct + close (LLM annotations)",
}
CORRECT = ("correct_primary", "correct_secondary")  # annotation categories (novic.scoring)
CLOSE = ("close_primary", "close_secondary")
HEAD_COLUMNS = ["run", "embedder", "vocabulary", "benchmark", "images"]
TABLE1_COLUMNS = [
    *HEAD_COLUMNS,
    "zero-shot top-1 (ceiling)",
    "paper: zero-shot top-1",
    "class-list top-1",
    "paper: class-list top-1",
    "free top-1",
    "open-vocab score",
    "whole-vocab top-1",
    "whole-vocab open-vocab score",
    "paper source",
]
TABLE2_COLUMNS = [
    *HEAD_COLUMNS,
    "open-vocab score",
    "paper: open-vocab score (human annotations)",
    "paper: open-vocab score (LLM annotations)",
    "primary score",
    "overall score (specificity)",
    "correct",
    "paper: correct (LLM annotations)",
    "correct + close",
    "paper: correct + close (LLM annotations)",
    "open-vocab top-5 score",
    "whole-vocab open-vocab score",
    "whole-vocab overall score (specificity)",
    "unannotated answers",
    "paper source",
]


class PaperResultsError(ValueError):
    """A malformed paper results file or eval metrics; the message names the file and the key."""


def _hub_name(spec: Any) -> str | None:
    """The hub model of an embedder spec ({hub: ORG/NAME}), without "hf-hub:"; else None."""
    if isinstance(spec, Mapping) and isinstance(spec.get("hub"), str):
        return spec["hub"].removeprefix("hf-hub:")
    return None


def load_paper_results(path: str | Path) -> dict[tuple[str, int | None, str, str], dict]:
    """The paper's numbers of a resources/paper_results.yaml file, by (embedder hub model,
    vocabulary threshold or None for any, benchmark, measure): {"value": percent, "source"}.

    Every entry must name its source (the paper's table and column) and its embedder; a measure
    not in PAPER_MEASURES, a value that is not a percentage, or the same number given twice stops
    with a PaperResultsError naming the file and the key."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PaperResultsError(f"{path}: cannot read the paper's results: {exc}") from exc
    entries = doc.get("entries") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise PaperResultsError(f"{path}: expected a mapping with a non-empty list `entries`")
    known: dict[tuple[str, int | None, str, str], dict] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: entries[{i}]"
        if not isinstance(entry, Mapping):
            raise PaperResultsError(f"{where}: expected a mapping, got {entry!r}")
        unknown = set(entry) - {"source", "embedder", "threshold", "values"}
        if unknown:
            raise PaperResultsError(f"{where}: unknown keys {sorted(unknown)}")
        source, embedder = entry.get("source"), entry.get("embedder")
        if not isinstance(source, str) or "Table" not in source:
            raise PaperResultsError(
                f"{where}.source: {source!r} does not name the paper's table and column"
            )
        if _hub_name({"hub": embedder}) is None or "/" not in str(embedder):
            raise PaperResultsError(f"{where}.embedder: {embedder!r} is not a hub model ORG/NAME")
        threshold = entry.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
        ):
            raise PaperResultsError(f"{where}.threshold: {threshold!r} is not a vocabulary (int)")
        values = entry.get("values")
        if not isinstance(values, Mapping) or not values:
            raise PaperResultsError(f"{where}.values: expected {{benchmark: {{measure: percent}}}}")
        for bench, measures in values.items():
            if not isinstance(measures, Mapping) or not measures:
                raise PaperResultsError(
                    f"{where}.values.{bench}: expected {{measure: percent}}, got {measures!r}"
                )
            for measure, value in measures.items():
                key = f"{where}.values.{bench}.{measure}"
                if measure not in PAPER_MEASURES:
                    raise PaperResultsError(
                        f"{key}: unknown measure (known: {', '.join(PAPER_MEASURES)})"
                    )
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise PaperResultsError(f"{key}: {value!r} is not a number")
                if not 0 <= value <= 100:
                    raise PaperResultsError(f"{key}: {value!r} is not a percentage (0 to 100)")
                ident = (_hub_name({"hub": embedder}) or "", threshold, str(bench), measure)
                if ident in known:
                    raise PaperResultsError(
                        f"{key}: given twice (also by {known[ident]['source']!r})"
                    )
                known[ident] = {"value": float(value), "source": source}
    return known


def _paper(
    paper: Mapping[tuple[str, int | None, str, str], dict],
    hub: str | None,
    threshold: Any,
    benchmark: str,
    measure: str,
) -> dict | None:
    """The paper's number for this embedder, vocabulary, benchmark and measure (or None)."""
    if hub is None:
        return None
    return paper.get((hub, threshold, benchmark, measure)) or paper.get(
        (hub, None, benchmark, measure)
    )


def _embedder_label(spec: Any, key: Any) -> str:
    """How the tables name a run's embedder: its hub model, else its config key."""
    hub = _hub_name(spec)
    if hub:
        return hub
    if isinstance(spec, Mapping) and spec.get("arch"):
        return f"{key} ({spec['arch']})" if key else str(spec["arch"])
    return str(key or "")


def _share(e: Mapping[str, Any], *keys: str) -> float | None:
    """A share in [0, 1] at keys of eval metrics (None where a block or key is absent); anything
    else stops with an error naming the metrics file and the key."""
    node: Any = e
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    if node is None:
        return None
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise PaperResultsError(f"{_where(e)}: {'.'.join(keys)}: {node!r} is not a number")
    if not math.isnan(node) and not 0 <= node <= 1:
        raise PaperResultsError(f"{_where(e)}: {'.'.join(keys)}: {node!r} is not a share (0-1)")
    return float(node)


def _where(e: Mapping[str, Any]) -> str:
    return str(e.get("_source") or f"metrics of benchmark {e.get('benchmark', '?')}")


def _category_share(e: Mapping[str, Any], *categories: str) -> float | None:
    """The share of annotated images whose best top-1 answer is in one of `categories`."""
    top1 = e.get("open_vocab", {}).get("top1", {})
    counts, images = top1.get("counts"), top1.get("images")
    if not isinstance(counts, Mapping) or not images:
        return None
    try:
        return sum(int(counts.get(c, 0)) for c in categories) / int(images)
    except (TypeError, ValueError) as exc:
        raise PaperResultsError(
            f"{_where(e)}: open_vocab.top1.counts {dict(counts)!r} / images {images!r}: {exc}"
        ) from exc


def _paper_cells(
    paper: Mapping, hub: str | None, threshold: Any, benchmark: str, measures: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """The paper's columns of a row (blank where the paper gives nothing) and their sources."""
    cells, sources = {}, []
    for m in measures:
        hit = _paper(paper, hub, threshold, benchmark, m)
        cells[f"paper: {PAPER_MEASURES[m]}"] = "" if hit is None else f"{hit['value']:.2f}"
        if hit is not None and hit["source"] not in sources:
            sources.append(hit["source"])
    return cells, sources


def paper_table_rows(
    runs: Mapping[str, Mapping[str, Any]], paper: Mapping
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of the paper's Table 1 (labelled benchmarks) and Table 2 (annotated ones, the
    open-vocabulary scores), one per run and benchmark, in percent, with the paper's numbers
    beside them where the run's embedder and vocabulary are the paper's.

    `runs`: run name -> {"embedder": its config embedder spec, "embedder_key": its key,
    "threshold": its vocabulary, "evals": its benchmark metrics (novic.evaluate)}; a metrics
    file's own `embedder` (the spec the decoder was trained with) wins over the config's.
    `paper`: load_paper_results. A benchmark with class labels (a zero_shot or guided block) is
    a Table 1 row; one with an open_vocab block a Table 2 row; a block it lacks leaves blanks.
    """
    table1: list[dict[str, Any]] = []
    table2: list[dict[str, Any]] = []
    for run, r in runs.items():
        threshold = r.get("threshold")
        for e in r.get("evals", []):
            if not isinstance(e, Mapping):
                raise PaperResultsError(f"run {run}: metrics {e!r} are not a JSON object")
            if not isinstance(e.get("benchmark"), str):
                raise PaperResultsError(f"{_where(e)}: run {run}: no `benchmark` name")
            spec = e.get("embedder") or r.get("embedder")
            hub, bench = _hub_name(spec), e["benchmark"]
            head = {
                "run": run,
                "embedder": _embedder_label(spec, r.get("embedder_key")),
                "vocabulary": "" if threshold is None else f"FT{threshold}",
                "benchmark": bench,
                "images": e.get("evaluated", ""),
            }
            if "zero_shot" in e or "guided" in e:
                cells, sources = _paper_cells(
                    paper, hub, threshold, bench, ["zero_shot_top1", "guided_top1"]
                )
                table1.append(
                    head
                    | cells
                    | {
                        "zero-shot top-1 (ceiling)": _pct(_share(e, "zero_shot", "top1")),
                        "class-list top-1": _pct(_share(e, "guided", "top1")),
                        "free top-1": _pct(_share(e, "free", "top1")),
                        "open-vocab score": _pct(_share(e, "open_vocab", "top1", "score")),
                        "whole-vocab top-1": _pct(_share(e, "whole_vocab", "top1")),
                        "whole-vocab open-vocab score": _pct(
                            _share(e, "whole_vocab", "open_vocab", "top1", "score")
                        ),
                        "paper source": "; ".join(sources),
                    }
                )
            if "open_vocab" in e:
                measures = [m for m in PAPER_MEASURES if m.startswith("open_")]
                cells, sources = _paper_cells(paper, hub, threshold, bench, measures)
                counts = e["open_vocab"].get("top1", {}).get("counts", {})
                table2.append(
                    head
                    | {"images": e["open_vocab"].get("top1", {}).get("images", head["images"])}
                    | cells
                    | {
                        "open-vocab score": _pct(_share(e, "open_vocab", "top1", "score")),
                        "primary score": _pct(_share(e, "open_vocab", "top1", "primary_score")),
                        "overall score (specificity)": _pct(
                            _share(e, "open_vocab", "top1", "overall_score")
                        ),
                        "correct": _pct(_category_share(e, *CORRECT)),
                        "correct + close": _pct(_category_share(e, *CORRECT, *CLOSE)),
                        "open-vocab top-5 score": _pct(_share(e, "open_vocab", "top5", "score")),
                        "whole-vocab open-vocab score": _pct(
                            _share(e, "whole_vocab", "open_vocab", "top1", "score")
                        ),
                        "whole-vocab overall score (specificity)": _pct(
                            _share(e, "whole_vocab", "open_vocab", "top1", "overall_score")
                        ),
                        "unannotated answers": counts.get("missing", "")
                        if isinstance(counts, Mapping)
                        else "",
                        "paper source": "; ".join(sources),
                    }
                )
    return table1, table2
