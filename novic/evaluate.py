"""Evaluation of a trained decoder (reference sections 8 and 9).

One image benchmark (evaluate_images) embeds the dataset's images once and measures:

- zero-shot CLIP with the class list, the ceiling: per class the mean of the unit embeddings of
  the prompt ensemble (CLIP's ImageNet, CIFAR or Food-101 templates filled with the class's
  first name), re-normalised; the prediction is the nearest class;
- NOVIC with the class list: each class name is canonicalised and mapped through the
  dictionary's variants (singulars, plurals, canonical forms) to dictionary ids; a class's
  acceptable answers are the model's target nouns with one of those ids. Decoding is guided by
  the union of the acceptable answers; top-1 and top-5 count an answer in the true class's set.
  Classes without any acceptable noun can never be right (they are listed);
- NOVIC without a list ("free"): the generation config as given (the reference's default is
  guided by all the model's nouns), the predictions written to a predictions JSON, exact-match
  accuracy against the class sets, and the semantic similarity (MiniLM, novic.scoring) of the
  top-1 noun with the true class name; with an annotation file, the reference's points;
- zero-shot CLIP over every noun of the run's vocabulary ("whole_vocab", novic.baseline): the
  nearest nouns to each image among the prompt-ensemble embeddings of all its target nouns
  (a cache of rule embed_vocab_nouns), scored exactly like the free predictions, with its
  cost (the one-off embedding of the noun texts; milliseconds per image of the search);
- the modality gap: angles between image embeddings and the text embedding of their class,
  against random classes, next to the angles the training noise rotates text embeddings by.

The text side (evaluate_text) decodes held-out text embeddings (prompt templates and LLM
captions the decoder never saw) and counts exact matches of the top-1 noun with the row's target
nouns. It measures how well the decoder inverts the text encoder, so it is meaningful even for a
random embedder, whose image accuracy is at chance level.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from novic.decoding import NounDecoder, Prediction
from novic.device import device_name
from novic.embedders import Embedder
from novic.forms import canonical
from novic.io import sha256_json, write_json
from novic.progress import format_eta
from novic.settings import BenchmarkSettings, EvalSettings

log = logging.getLogger(__name__)

CIFAR_TEMPLATES = (
    "a photo of a {c}.",
    "a blurry photo of a {c}.",
    "a black and white photo of a {c}.",
    "a low contrast photo of a {c}.",
    "a high contrast photo of a {c}.",
    "a bad photo of a {c}.",
    "a good photo of a {c}.",
    "a photo of a small {c}.",
    "a photo of a big {c}.",
    "a photo of the {c}.",
    "a blurry photo of the {c}.",
    "a black and white photo of the {c}.",
    "a low contrast photo of the {c}.",
    "a high contrast photo of the {c}.",
    "a bad photo of the {c}.",
    "a good photo of the {c}.",
    "a photo of the small {c}.",
    "a photo of the big {c}.",
)
PROMPT_SETS = ("imagenet", "cifar", "food", "simple")
PROGRESS_SECONDS = 30.0
SAMPLES_SHOWN = 8


def prompt_templates(name: str) -> list[str]:
    """The zero-shot prompt ensemble `name` (CLIP's lists), templates with {c}."""
    if name == "imagenet":
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        return [t("{c}") for t in OPENAI_IMAGENET_TEMPLATES]
    if name == "cifar":
        return list(CIFAR_TEMPLATES)
    if name == "food":
        return ["a photo of {c}, a type of food."]
    if name == "simple":
        return ["a photo of a {c}."]
    raise ValueError(f"unknown prompt set {name!r} (known: {', '.join(PROMPT_SETS)})")


# --- class names -> model nouns ---------------------------------------------------------------


def variant_index(dictionary: str | Path) -> dict[str, set[int]]:
    """Canonical form of every variant (singular, plural, target noun) -> dictionary ids."""
    from novic.dictionary import read_nouns

    table = read_nouns(dictionary).select(["id", "target_noun", "singulars", "plurals"])
    index: dict[str, set[int]] = {}
    for row in table.to_pylist():
        for form in [row["target_noun"], *row["singulars"], *row["plurals"]]:
            key = canonical(form)
            if key:
                index.setdefault(key, set()).add(int(row["id"]))
    return index


def class_targets(
    classes: Sequence[Sequence[str]],
    index: Mapping[str, set[int]],
    nouns: Sequence[str],
    noun_ids: Sequence[int],
) -> list[list[str]]:
    """The model's nouns that answer each class (the reference's exact variant matching).

    `nouns`/`noun_ids` are the model's target nouns and their dictionary ids (entry 0 unused).
    """
    by_id: dict[int, list[str]] = {}
    for noun, nid in zip(nouns[1:], noun_ids[1:], strict=True):
        by_id.setdefault(int(nid), []).append(noun)
    own = set(nouns[1:])
    out = []
    for names in classes:
        ids: set[int] = set()
        found: list[str] = []
        for name in names:
            key = canonical(name)
            if not key:
                continue
            ids |= index.get(key, set())
            if key in own and key not in found:
                found.append(key)
        for nid in sorted(ids):
            found.extend(n for n in by_id.get(nid, []) if n not in found)
        out.append(found)
    return out


# --- embedding a dataset ----------------------------------------------------------------------


def embed_dataset(
    embedder: Embedder, ds: Any, batch_size: int
) -> tuple[np.ndarray, list[int], list[str]]:
    """Image embeddings [N', F] of the readable samples, their positions, and the errors."""
    kept: list[int] = []
    errors: list[str] = []
    chunks: list[np.ndarray] = []
    batch: list[Any] = []
    start = last = time.perf_counter()
    n = len(ds)
    for i in range(n):
        try:
            batch.append(ds.load(i))
            kept.append(i)
        except OSError as exc:  # ImageError: report and go on
            errors.append(str(exc))
            log.warning("skipping %s", exc)
        if len(batch) >= batch_size or (i == n - 1 and batch):
            chunks.append(embedder.encode_images(batch, batch_size=batch_size))
            batch = []
            now = time.perf_counter()
            if now - last >= PROGRESS_SECONDS or i == n - 1:
                last = now
                rate = (i + 1) / (now - start)
                log.info(
                    "embedded %d/%d images, %.1f images/s, ETA %s",
                    i + 1,
                    n,
                    rate,
                    format_eta((n - i - 1) / rate),
                )
    dim = embedder.dim
    emb = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return emb, kept, errors


def class_embeddings(
    embedder: Embedder, classes: Sequence[Sequence[str]], prompts: str
) -> np.ndarray:
    """Zero-shot class vectors [C, F]: mean unit prompt embedding per class, re-normalised."""
    templates = prompt_templates(prompts)
    texts = [t.format(c=names[0]) for names in classes for t in templates]
    emb = embedder.encode_texts(texts).reshape(len(classes), len(templates), -1).mean(1)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


# --- modality gap -----------------------------------------------------------------------------


def _stats(angles: np.ndarray) -> dict[str, float]:
    if angles.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(angles.mean()), "std": float(angles.std()), "n": int(angles.size)}


def modality_gap(
    images: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    noise: Mapping[str, Any] | None,
    samples: int,
    seed: int,
) -> dict[str, Any]:
    """Angles (degrees) image-to-own-class, image-to-random-other-class, and text-to-noisy-text
    under the run's training noise, with histograms (1-degree bins) for the report."""
    from novic.noise import angles_deg, apply_noise
    from novic.settings import NoiseSettings

    rng = np.random.default_rng(seed)
    cos = np.clip((images * classes[labels]).sum(1), -1, 1)
    matching = np.degrees(np.arccos(cos))
    other = (labels + rng.integers(1, max(len(classes), 2), len(labels))) % len(classes)
    cos_r = np.clip((images * classes[other]).sum(1), -1, 1)
    random = np.degrees(np.arccos(cos_r)) if len(classes) > 1 else np.zeros(0)
    noise_angles = np.zeros(0)
    if noise is not None:
        cfg = NoiseSettings(**noise)
        if cfg.scheme != "none":
            gen = torch.Generator().manual_seed(seed)
            base = torch.from_numpy(classes[rng.integers(0, len(classes), samples)]).float()
            noisy = apply_noise(base, cfg, gen)
            noise_angles = angles_deg(base, noisy).numpy()
    bins = np.arange(0, 181)

    def hist(a: np.ndarray) -> list[int]:
        return np.histogram(a, bins=bins)[0].tolist()

    return {
        "matching_deg": _stats(matching),
        "random_deg": _stats(random),
        "noise_deg": _stats(noise_angles),
        "histograms": {
            "bins_deg": bins.tolist(),
            "matching": hist(matching),
            "random": hist(random),
            "noise": hist(noise_angles),
        },
    }


# --- image benchmarks -------------------------------------------------------------------------


def _names(preds: Sequence[Prediction], k: int) -> list[str]:
    return [p.noun for p in preds[:k]]


def evaluate_images(
    checkpoint: str | Path,
    bench: BenchmarkSettings,
    settings: EvalSettings,
    dictionary: str | Path,
    device: torch.device,
    metrics_path: str | Path,
    predictions_path: str | Path,
    samples_path: str | Path | None = None,
    embedder: Embedder | None = None,
    cache_dir: str | None = None,
    vocab_embeddings: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate one run on one benchmark; write the metrics and predictions JSON files (and a
    figure of sample images with their top predictions). The checkpoint's embedder is loaded
    offline from `cache_dir` (rule prepare_embedder downloaded it) unless one is passed in.
    With `vocab_embeddings` (a cache of novic.baseline.embed_vocab_nouns) and
    settings.whole_vocab, the whole-vocabulary zero-shot baseline is scored too."""
    t0 = time.perf_counter()
    ds, clf = _open_benchmark(checkpoint, bench, settings, device, embedder, cache_dir)
    timings: dict[str, float] = {"load_s": time.perf_counter() - t0}
    log.info(
        "%s: %d images (%s, split %s), %d classes; model %s on %s",
        bench.name, len(ds), bench.kind, bench.split, len(ds.classes), checkpoint, device,
    )  # fmt: skip

    t = time.perf_counter()
    images, kept, errors = embed_dataset(clf.embedder, ds, settings.batch_size)
    timings["embed_s"] = time.perf_counter() - t
    labels = np.array([ds.label(i) for i in kept], dtype=np.int64)
    metrics = _run_metrics(bench, settings, ds, clf, kept, errors, device)
    t = time.perf_counter()
    free = clf.decoder(images) if len(kept) else []
    timings["decode_free_s"] = time.perf_counter() - t
    metrics["free"] = {"gencfg": clf.decoder.cfg.name}
    free_names = [_names(p, 5) for p in free]
    baseline: list[list[str]] | None = None
    if settings.whole_vocab and vocab_embeddings:
        metrics["whole_vocab"], baseline = _whole_vocab(
            vocab_embeddings, clf, images, bench.prompts, timings
        )

    guided: list[list[Prediction]] = []
    if ds.classes:
        class_vecs = class_embeddings(clf.embedder, ds.classes, bench.prompts)
        metrics["zero_shot"] = _zero_shot(images, labels, class_vecs, bench.prompts, timings)
        metrics["guided"], guided, sets = _class_list_decoding(
            clf, ds.classes, dictionary, settings, images, labels, timings
        )
        metrics["free"].update(
            _free_scores(free_names, sets, ds.classes, labels, settings, timings, "semantic_s")
        )
        if baseline is not None:
            metrics["whole_vocab"].update(
                _free_scores(
                    baseline, sets, ds.classes, labels, settings, timings, "whole_vocab_semantic_s"
                )
            )
        if len(kept):
            metrics["modality_gap"] = modality_gap(
                images, labels, class_vecs, clf.record.get("noise"), settings.gap_samples,
                settings.seed,
            )  # fmt: skip
    if bench.annotations:
        metrics["open_vocab"] = _open_vocab_scores(bench, ds, kept, free_names)
        if baseline is not None:
            metrics["whole_vocab"]["open_vocab"] = _open_vocab_scores(bench, ds, kept, baseline)

    samples = _write_predictions(
        predictions_path, metrics["run"], bench, settings, clf, ds, kept, free, guided, errors,
        baseline,
    )  # fmt: skip
    if samples_path is not None:
        _write_sample_grid(samples_path, ds, kept, samples, f"{metrics['run']} on {bench.name}")
    timings["total_s"] = time.perf_counter() - t0
    timings["images_per_s"] = len(kept) / max(timings["total_s"], 1e-9)
    if "whole_vocab" in metrics:
        wv = metrics["whole_vocab"]["timings"]
        wv["decoder_ms_per_image"] = round(1000 * timings["decode_free_s"] / max(len(kept), 1), 3)
    metrics["timings"] = {k: round(v, 3) for k, v in timings.items()}
    write_json(metrics, metrics_path)
    log.info("%s: %s", bench.name, _summary(metrics))
    return metrics


def _open_benchmark(
    checkpoint: str | Path,
    bench: BenchmarkSettings,
    settings: EvalSettings,
    device: torch.device,
    embedder: Embedder | None,
    cache_dir: str | None,
) -> tuple[Any, Any]:
    """The benchmark's images (subset, labels checked) and a Classifier of the checkpoint."""
    from novic.classify import Classifier
    from novic.datasets import check_labels, open_dataset

    ds = open_dataset(bench.kind, bench.root, bench.split, bench.classes or None, bench.name)
    ds = ds.subset(bench.limit, bench.seed)
    check_labels(ds)
    clf = Classifier(
        checkpoint, settings.gencfg, device=device, batch_size=settings.batch_size,
        embedder=embedder, cache_dir=cache_dir or None, offline=True,
    )  # fmt: skip
    return ds, clf


def _run_metrics(
    bench: BenchmarkSettings,
    settings: EvalSettings,
    ds: Any,
    clf: Any,
    kept: Sequence[int],
    errors: Sequence[str],
    device: torch.device,
) -> dict[str, Any]:
    """The metrics' head: the run, the benchmark, the images read and the config's hash."""
    record = clf.record
    return {
        "run": record.get("meta", {}).get("run", ""),
        "benchmark": bench.name,
        "kind": bench.kind,
        "split": bench.split,
        "images": len(ds),
        "evaluated": len(kept),
        "unreadable": len(errors),
        "unreadable_examples": errors[:5],
        "classes": len(ds.classes),
        "embedder": record.get("meta", {}).get("embedder_spec"),
        "random_embedder": clf.embedder.spec.kind in ("tiny", "random"),
        "device": device_name(device),
        "config_sha256": sha256_json(
            {
                "benchmark": bench.__dict__,
                "eval": settings.__dict__,
                "run": record.get("meta", {}).get("config"),
            }
        ),
    }


def _zero_shot(
    images: np.ndarray,
    labels: np.ndarray,
    class_vecs: np.ndarray,
    prompts: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The ceiling: zero-shot CLIP top-1/top-5 with the class list."""
    t = time.perf_counter()
    top = topk_indices(images @ class_vecs.T, 5)
    timings["zero_shot_s"] = time.perf_counter() - t
    return {
        "prompts": prompts,
        "top1": float(np.mean(top[:, 0] == labels)) if len(labels) else 0.0,
        "top5": float(np.mean((top == labels[:, None]).any(1))) if len(labels) else 0.0,
        "chance": 1 / len(class_vecs),
    }


def _whole_vocab(
    path: str | Path,
    clf: Any,
    images: np.ndarray,
    prompts: str,
    timings: dict[str, float],
) -> tuple[dict[str, Any], list[list[str]]]:
    """The whole-vocabulary baseline's head (its nouns, prompts, costs) and each image's top-5
    nouns. The cache must come from the run's embedder and vocabulary and the benchmark's
    prompt set."""
    from novic.baseline import nearest_nouns, read_vocab_embeddings

    meta = clf.record.get("meta", {})
    vocab = read_vocab_embeddings(
        path,
        {
            "novic.embedder_sha256": meta.get("embedder_sha256"),
            "novic.vocab_sha256": meta.get("vocab_sha256"),
            "novic.prompts": prompts,
        },
    )
    t = time.perf_counter()
    nouns = nearest_nouns(images, vocab, 5) if len(images) else []
    timings["whole_vocab_s"] = seconds = time.perf_counter() - t
    head = {
        "nouns": len(vocab.nouns),
        "prompts": prompts,
        "templates": len(json.loads(vocab.meta.get("novic.templates", "[]"))),
        "timings": {
            "embed_nouns_s": round(vocab.embed_seconds, 3),
            "embed_nouns_device": vocab.meta.get("novic.device", ""),
            "search_s": round(seconds, 3),
            "ms_per_image": round(1000 * seconds / max(len(images), 1), 3),
        },
    }
    return head, nouns


def _class_list_decoding(
    clf: Any,
    classes: Sequence[Sequence[str]],
    dictionary: str | Path,
    settings: EvalSettings,
    images: np.ndarray,
    labels: np.ndarray,
    timings: dict[str, float],
) -> tuple[dict[str, Any], list[list[Prediction]], list[set[str]]]:
    """NOVIC guided by the class list: its metrics, its predictions, and each image's set of
    acceptable nouns (the model's nouns that answer its class)."""
    from novic.scoring import topk_accuracy

    answers = class_targets(
        classes, variant_index(dictionary), clf.targets.nouns, clf.targets.noun_ids
    )
    unmapped = [classes[i][0] for i, a in enumerate(answers) if not a]
    guide = sorted({n for a in answers for n in a})
    sets = [set(answers[y]) for y in labels]
    guided: list[list[Prediction]] = []
    if guide and len(labels):
        dec = NounDecoder(
            clf.model, clf.targets, settings.class_gencfg, guide=guide,
            batch_size=settings.batch_size,
        )  # fmt: skip
        t = time.perf_counter()
        guided = dec(images)
        timings["decode_guided_s"] = time.perf_counter() - t
    acc = topk_accuracy([_names(p, 5) for p in guided], sets) if guided else {}
    metrics = {
        "gencfg": settings.class_gencfg,
        "top1": acc.get("top1", 0.0),
        "top5": acc.get("top5", 0.0),
        "classes_mapped": len(classes) - len(unmapped),
        "classes_unmapped": unmapped,
        "guide_nouns": len(guide),
    }
    return metrics, guided, sets


def _free_scores(
    free: Sequence[Sequence[str]],
    sets: Sequence[set[str]],
    classes: Sequence[Sequence[str]],
    labels: np.ndarray,
    settings: EvalSettings,
    timings: dict[str, float],
    timing: str,
) -> dict[str, float]:
    """Exact-match top-1/top-5 of free answers (each image's nouns, best first) against the
    class sets, and the semantic similarity of the top-1 noun with the true class name (its
    seconds in timings[timing])."""
    from novic.scoring import topk_accuracy

    free_acc = topk_accuracy([list(p[:5]) for p in free], sets) if free else {}
    scores = {"top1": free_acc.get("top1", 0.0), "top5": free_acc.get("top5", 0.0)}
    if settings.semantic and free:
        from novic.scoring import SentenceEncoder, semantic_similarity

        t = time.perf_counter()
        truth = [classes[y][0] for y in labels]
        top1 = [p[0] if p else "" for p in free]
        sims = semantic_similarity(top1, truth, SentenceEncoder())
        scores["semantic_similarity"] = float(sims.mean())
        timings[timing] = time.perf_counter() - t
    return scores


def _open_vocab_scores(
    bench: BenchmarkSettings, ds: Any, kept: Sequence[int], free: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """The reference's open-vocabulary points of free top-1 and top-5 answers (each image's
    nouns, best first)."""
    from novic.scoring import load_annotations, load_specificity, score_predictions

    samples = [
        (ds.id(i), ds.classes[ds.label(i)][0] if ds.classes else None, list(p[:5]))
        for i, p in zip(kept, free, strict=True)
    ]
    named = {image: nouns for image, _, nouns in samples}
    annotations = load_annotations(bench.annotations, samples)
    spec = load_specificity(bench.specificity or None)
    return {f"top{k}": score_predictions(named, annotations, spec, k).to_dict() for k in (1, 5)}


def _write_predictions(
    path: str | Path,
    run: str,
    bench: BenchmarkSettings,
    settings: EvalSettings,
    clf: Any,
    ds: Any,
    kept: Sequence[int],
    free: Sequence[Sequence[Prediction]],
    guided: Sequence[Sequence[Prediction]],
    errors: Sequence[str],
    baseline: Sequence[Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Write the predictions JSON (free predictions, the class-list answer where there is
    one, the whole-vocabulary baseline's nouns where it ran); return its samples."""
    labelled = bool(ds.classes)
    samples = []
    for j, (i, preds) in enumerate(zip(kept, free, strict=True)):
        entry: dict[str, Any] = {
            "id": ds.id(i),
            "label": ds.classes[ds.label(i)][0] if labelled else None,
            "predictions": [
                {"noun": p.noun, "prob": p.prob, "score": p.score, "kind": p.kind} for p in preds
            ],
        }
        if labelled and guided:
            entry["class_prediction"] = guided[j][0].noun if guided[j] else None
        if baseline is not None:
            entry["whole_vocab"] = list(baseline[j])
        samples.append(entry)
    write_json(
        {
            "run": run,
            "benchmark": bench.name,
            "gencfg": clf.decoder.cfg.name,
            "class_gencfg": settings.class_gencfg if labelled else None,
            "samples": samples,
            "errors": errors,
        },
        path,
    )
    return samples


def _write_sample_grid(
    path: str | Path, ds: Any, kept: Sequence[int], samples: Sequence[dict[str, Any]], title: str
) -> None:
    """A figure of the first SAMPLES_SHOWN images with their predictions."""
    from novic.report import sample_grid

    shown = kept[:SAMPLES_SHOWN]
    sample_grid(
        [ds.load(i) for i in shown],
        [samples[j] for j in range(len(shown))],
        path,
        title=title,
    )


def _summary(m: Mapping[str, Any]) -> str:
    parts = []
    if "zero_shot" in m:
        parts.append(f"zero-shot top-1 {m['zero_shot']['top1']:.3f}")
    if "guided" in m:
        parts.append(f"NOVIC class-list top-1 {m['guided']['top1']:.3f}")
    if "top1" in m.get("free", {}):
        parts.append(f"free top-1 {m['free']['top1']:.3f}")
    if "semantic_similarity" in m.get("free", {}):
        parts.append(f"semantic similarity {m['free']['semantic_similarity']:.3f}")
    if "open_vocab" in m:
        top1 = m["open_vocab"]["top1"]
        missing = top1.get("shares", {}).get("missing", 0.0)
        parts.append(
            f"open-vocabulary score {top1['score']:.3f} ({missing:.0%} of the predictions not "
            "annotated)"
        )
    wv = m.get("whole_vocab", {})
    if "top1" in wv:
        parts.append(f"whole-vocabulary CLIP top-1 {wv['top1']:.3f}")
    if "open_vocab" in wv:
        score = wv["open_vocab"]["top1"]["score"]
        parts.append(f"whole-vocabulary CLIP open-vocabulary score {score:.3f}")
    return ", ".join(parts) or "done"


# --- text side --------------------------------------------------------------------------------


def read_embedding_rows(path: str | Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `rows` (0 = all) embeddings [N, F] (float32) and targets [N, M] of a shard."""
    from novic.shards import fixed_list_numpy

    table = pq.read_table(path, columns=["embedding", "targets"])
    if rows > 0:
        table = table.slice(0, rows)
    dim = table.schema.field("embedding").type.list_size
    width = table.schema.field("targets").type.list_size
    emb = fixed_list_numpy(table.column("embedding"), dim).astype(np.float32)
    return emb, fixed_list_numpy(table.column("targets"), width)


def evaluate_text(
    checkpoint: str | Path,
    sources: Mapping[str, str | Path],
    settings: EvalSettings,
    device: torch.device,
    metrics_path: str | Path,
) -> dict[str, Any]:
    """Top-1/top-5 exact match of decoded held-out text embeddings with their target nouns.

    `sources` names embedding shards of held-out rows (e.g. {"m1": .../m1/heldout.parquet});
    a row counts as right when a predicted noun is one of its targets.
    """
    from novic.checkpoint import load_decoder

    t0 = time.perf_counter()
    model, targets, record = load_decoder(checkpoint, device)
    decoder = NounDecoder(model, targets, settings.gencfg, batch_size=settings.batch_size)
    id_to_noun = dict(zip(targets.noun_ids, targets.nouns, strict=True))
    out: dict[str, Any] = {
        "run": record.get("meta", {}).get("run", ""),
        "gencfg": decoder.cfg.name,
        "device": device_name(device),
        "config_sha256": sha256_json(
            {"eval": settings.__dict__, "run": record.get("meta", {}).get("config")}
        ),
        "sources": {},
    }
    for name, path in sources.items():
        t = time.perf_counter()
        emb, tgt = read_embedding_rows(path, settings.text_rows)
        if len(emb) == 0:
            out["sources"][name] = {"rows": 0}
            continue
        preds = decoder(emb)
        truth = [{id_to_noun.get(int(i), "") for i in row if i} for row in tgt]
        top1 = np.mean([bool(p) and p[0].noun in ok for p, ok in zip(preds, truth, strict=True)])
        top5 = np.mean(
            [any(q.noun in ok for q in p[:5]) for p, ok in zip(preds, truth, strict=True)]
        )
        seconds = time.perf_counter() - t
        out["sources"][name] = {
            "rows": len(emb),
            "top1": float(top1),
            "top5": float(top5),
            "seconds": round(seconds, 3),
            "rows_per_s": round(len(emb) / max(seconds, 1e-9), 1),
            "examples": [
                {"targets": sorted(ok), "predictions": _names(p, 3)}
                for p, ok in list(zip(preds, truth, strict=True))[:5]
            ],
        }
        log.info("text %s: %d rows, top-1 %.3f, top-5 %.3f", name, len(emb), top1, top5)
    out["timings"] = {"total_s": round(time.perf_counter() - t0, 3)}
    write_json(out, metrics_path)
    return out


def load_metrics(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
