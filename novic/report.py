"""Figures and tables of the HTML report (`snakemake --report`), drawn with matplotlib.

Per run: the metrics table (every benchmark: zero-shot ceiling, NOVIC with the class list, free
predictions, semantic similarity, open-vocabulary points; the text side), training curves (loss,
teacher-forced token accuracy, learning rate per chunk), accuracy against the zero-shot ceiling,
the modality gap next to the training noise angles, and sample images with their predictions.
"""

from __future__ import annotations

import csv
import json
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
    NOVIC predictions, and chance."""
    import numpy as np

    plt = _pyplot()
    labelled = [e for e in evals if "zero_shot" in e]
    names = [e["benchmark"] for e in labelled] or ["(no labelled benchmark)"]
    series = {
        "zero-shot CLIP (ceiling)": [e["zero_shot"]["top1"] for e in labelled],
        "NOVIC, class list": [e["guided"]["top1"] for e in labelled],
        "NOVIC, free": [e["free"].get("top1", 0.0) for e in labelled],
        "chance": [e["zero_shot"]["chance"] for e in labelled],
    }
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(names) + 2), 3.4), layout="constrained")
    x = np.arange(len(labelled))
    width = 0.2
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - 1.5) * width, values, width, label=label)
    ax.set_xticks(x, names[: len(labelled)])
    ax.set(ylabel="top-1 accuracy", ylim=(0, 1), title=title)
    ax.legend(fontsize=7)
    _save(fig, path)


def modality_gap_plot(evals: Sequence[Mapping[str, Any]], path: str | Path, title: str) -> None:
    """Histograms of image-text angles (matching and random classes) and of the noise angles."""
    import numpy as np

    plt = _pyplot()
    withgap = [e for e in evals if "modality_gap" in e]
    n = max(len(withgap), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.4), squeeze=False, layout="constrained")
    for ax, e in zip(axes.flat, withgap, strict=False):
        gap = e["modality_gap"]
        h = gap["histograms"]
        centers = np.array(h["bins_deg"][:-1]) + 0.5
        for key, label in (
            ("matching", "image vs own class text"),
            ("random", "image vs other class text"),
            ("noise", "text vs noisy text (training)"),
        ):
            counts = np.array(h[key], dtype=float)
            if counts.sum():
                ax.plot(centers, counts / counts.sum(), label=label)
        for key, style in (("matching", ":"), ("random", "--")):
            ax.axvline(PAPER_GAP_DEG[key], color="grey", linestyle=style, linewidth=0.8)
        ax.set(xlabel="angle (degrees)", ylabel="share", title=e["benchmark"], xlim=(0, 180))
        ax.legend(fontsize=7)
    if not withgap:
        axes.flat[0].axis("off")
        axes.flat[0].text(0.5, 0.5, "no labelled benchmark", ha="center")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def metrics_rows(
    evals: Sequence[Mapping[str, Any]], text: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per (benchmark or text source): the headline numbers in percent."""

    def pct(x: Any) -> str:
        return "" if x is None else f"{100 * float(x):.2f}"

    rows = []
    for e in evals:
        free = e.get("free", {})
        ov = e.get("open_vocab", {}).get("top1", {})
        rows.append(
            {
                "benchmark": e["benchmark"],
                "images": e.get("evaluated", ""),
                "zero-shot top-1 (ceiling)": pct(e.get("zero_shot", {}).get("top1")),
                "class-list top-1": pct(e.get("guided", {}).get("top1")),
                "class-list top-5": pct(e.get("guided", {}).get("top5")),
                "free top-1": pct(free.get("top1")),
                "free top-5": pct(free.get("top5")),
                "semantic similarity": pct(free.get("semantic_similarity")),
                "open-vocab score": pct(ov.get("score")),
                "open-vocab overall (specificity)": pct(ov.get("overall_score")),
                "chance": pct(e.get("zero_shot", {}).get("chance")),
                "unmapped classes": len(e.get("guided", {}).get("classes_unmapped", [])),
                "device": e.get("device", ""),
                "images/s": f"{e.get('timings', {}).get('images_per_s', 0):.1f}",
            }
        )
    for name, s in (text or {}).get("sources", {}).items():
        rows.append(
            {
                "benchmark": f"text: held-out {name}"
                + ("" if name == "captions" else " templates"),
                "images": s.get("rows", 0),
                "free top-1": pct(s.get("top1")),
                "free top-5": pct(s.get("top5")),
                "device": (text or {}).get("device", ""),
            }
        )
    return rows


def write_table(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """A CSV table (the report renders it)."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys or ["benchmark"], restval="")
        writer.writeheader()
        writer.writerows(rows)


def run_report(
    run: str,
    eval_paths: Sequence[str | Path],
    text_path: str | Path | None,
    train_metrics: str | Path | None,
    outputs: Mapping[str, str | Path],
) -> None:
    """Every per-run figure and the table (`outputs`: table, curves, accuracy, gap)."""
    evals = [json.loads(Path(p).read_text()) for p in eval_paths]
    text = json.loads(Path(text_path).read_text()) if text_path else None
    write_table(metrics_rows(evals, text), outputs["table"])
    if train_metrics:
        training_curves(train_metrics, outputs["curves"], f"training of {run}")
    accuracy_vs_ceiling(evals, outputs["accuracy"], f"{run}: top-1 against the zero-shot ceiling")
    modality_gap_plot(evals, outputs["gap"], f"{run}: modality gap and training noise")
