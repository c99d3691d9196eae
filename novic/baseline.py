"""The whole-vocabulary zero-shot CLIP baseline: nearest noun among every noun of a vocabulary.

The answer to "why not CLIP zero-shot over all the nouns?". Each target noun of a vocabulary
gets one text embedding, the zero-shot prompt ensemble filled with its display form (the mean
of the unit template embeddings, re-normalised, as novic.evaluate.class_embeddings does for a
class list); an image's predictions are the nouns of highest cosine similarity.

The noun embeddings depend only on the embedder, the vocabulary and the templates, so rule
embed_vocab_nouns writes them once (embed_vocab_nouns) to a Parquet cache:

    id           int32                              the noun's dictionary id
    target_noun  string                             the noun a prediction names
    embedding    fixed_size_list<float32>[F]        unit-norm prompt-ensemble embedding

with file metadata novic.artifact = "vocab_embeddings", novic.embedder (config key),
novic.embedder_spec (JSON), novic.embedder_sha256, novic.dim, novic.vocab_sha256,
novic.threshold, novic.prompts (the prompt set's name), novic.templates (JSON list),
novic.rows, novic.embed_seconds (the one-off cost of embedding the noun texts) and
novic.device. read_vocab_embeddings() checks it against the run it is used with.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novic.device import device_name
from novic.embed import embedder_metadata, load_prepared_embedder
from novic.embedders import Embedder
from novic.io import read_metadata, write_parquet
from novic.progress import format_eta
from novic.shards import CacheMismatchError, fixed_list_numpy, reading

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ARTIFACT = "vocab_embeddings"
CHUNK_NOUNS = 64  # nouns embedded per progress step (x the templates: texts per step)
PROGRESS_SECONDS = 30.0
SEARCH_ROWS = 1024  # images per similarity matrix (bounds its memory: rows x nouns floats)


@dataclass(frozen=True)
class VocabEmbeddings:
    """A vocabulary's noun embeddings (unit rows of `embeddings`, [N, F]) and their metadata."""

    ids: np.ndarray
    nouns: list[str]
    embeddings: np.ndarray
    meta: dict[str, str]

    @property
    def embed_seconds(self) -> float:
        """Seconds it took to embed the noun texts, once (the cache's cost)."""
        return float(self.meta.get("novic.embed_seconds", "nan"))


def noun_embeddings(
    embedder: Embedder,
    names: Sequence[str],
    templates: Sequence[str],
    batch_size: int = 256,
    chunk_nouns: int = CHUNK_NOUNS,
) -> np.ndarray:
    """Unit embeddings [N, F] (float32): per name the mean of its unit template embeddings,
    re-normalised; progress with rate and ETA is logged for long lists."""
    if not templates:
        raise ValueError("no prompt templates to embed the nouns with")
    n, out = len(names), []
    start = last = time.perf_counter()
    for i in range(0, n, chunk_nouns):
        chunk = names[i : i + chunk_nouns]
        texts = [t.format(c=name) for name in chunk for t in templates]
        emb = embedder.encode_texts(texts, batch_size=batch_size).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        mean = emb.reshape(len(chunk), len(templates), -1).mean(1)
        out.append(mean / np.linalg.norm(mean, axis=1, keepdims=True))
        now = time.perf_counter()
        done = i + len(chunk)
        if now - last >= PROGRESS_SECONDS or done == n:
            last = now
            rate = done / (now - start)
            log.info(
                "embedded %d/%d nouns (%d texts each), %.1f nouns/s, ETA %s",
                done, n, len(templates), rate, format_eta((n - done) / rate),
            )  # fmt: skip
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


def embed_vocab_nouns(
    vocab: str | Path,
    out: str | Path,
    embedder: Embedder,
    embedder_key: str,
    prompts: str,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Embed every target noun of the vocabulary file `vocab` with the prompt set `prompts`
    (novic.evaluate.prompt_templates) into the cache `out`; return its stats."""
    from novic.dictionary import META_THRESHOLD, nouns_fingerprint, read_nouns
    from novic.evaluate import prompt_templates

    templates = prompt_templates(prompts)
    table = read_nouns(vocab)
    if table.num_rows == 0:
        raise ValueError(f"{vocab}: the vocabulary has no nouns to embed")
    vocab_sha256 = nouns_fingerprint(vocab)
    t = time.perf_counter()
    emb = noun_embeddings(embedder, table.column("pretty_noun").to_pylist(), templates, batch_size)
    seconds = time.perf_counter() - t
    meta = {
        "novic.artifact": ARTIFACT,
        **embedder_metadata(embedder, embedder_key),
        "novic.vocab_sha256": vocab_sha256,
        "novic.threshold": read_metadata(vocab).get(META_THRESHOLD, ""),
        "novic.prompts": prompts,
        "novic.templates": json.dumps(templates),
        "novic.rows": str(len(emb)),
        "novic.embed_seconds": f"{seconds:.3f}",
        "novic.device": device_name(embedder.device),
    }
    flat = pa.array(emb.reshape(-1), pa.float32())
    result = pa.table(
        {
            "id": table.column("id"),
            "target_noun": table.column("target_noun"),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, embedder.dim),
        }
    )
    write_parquet(result, out, meta)
    log.info(
        "%s: %d nouns x %d %s templates in %.1f s on %s",
        out, len(emb), len(templates), prompts, seconds, meta["novic.device"],
    )  # fmt: skip
    return {"rows": len(emb), "templates": len(templates), "seconds": round(seconds, 3)}


def read_vocab_embeddings(
    path: str | Path, expect: Mapping[str, str | None] | None = None
) -> VocabEmbeddings:
    """Read a cache of embed_vocab_nouns. `expect` maps metadata keys (e.g.
    "novic.embedder_sha256", "novic.vocab_sha256") to the values the caller was built with;
    a differing value (None or "" = unknown, not checked) raises CacheMismatchError."""
    with reading(path, "vocabulary embedding cache"):
        table = pq.read_table(path)
    raw = table.schema.metadata or {}
    meta = {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}
    if meta.get("novic.artifact") != ARTIFACT:
        raise CacheMismatchError(
            f"{path}: not a vocabulary embedding cache (novic.artifact = "
            f"{meta.get('novic.artifact')!r}, expected {ARTIFACT!r})"
        )
    missing = [c for c in ("id", "target_noun", "embedding") if c not in table.schema.names]
    if missing:
        raise CacheMismatchError(f"{path}: missing columns {missing}; delete it and rebuild it")
    for key, want in (expect or {}).items():
        if want and meta.get(key) != want:
            raise CacheMismatchError(
                f"{path}: {key} is {meta.get(key)!r}, the evaluated run has {want!r}; "
                "delete it and rerun the workflow to embed the nouns again"
            )
    dim = table.schema.field("embedding").type.list_size
    return VocabEmbeddings(
        ids=table.column("id").to_numpy(),
        nouns=table.column("target_noun").to_pylist(),
        embeddings=fixed_list_numpy(table.column("embedding"), dim).astype(np.float32),
        meta=meta,
    )


def nearest_nouns(
    images: np.ndarray | torch.Tensor,
    vocab: VocabEmbeddings,
    k: int = 5,
    rows: int = SEARCH_ROWS,
) -> list[list[str]]:
    """The `k` nouns nearest (cosine) to each unit image embedding, best first (equal
    similarities in the vocabulary's order)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 2 or images.shape[1] != vocab.embeddings.shape[1]:
        raise ValueError(
            f"image embeddings of shape {images.shape} do not match the "
            f"{vocab.embeddings.shape[1]}-d noun embeddings"
        )
    k = min(k, len(vocab.nouns))
    out: list[list[str]] = []
    for i in range(0, len(images), rows):
        sims = images[i : i + rows] @ vocab.embeddings.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
        if part is None:
            top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        else:  # order the k candidates: by similarity, then by position in the vocabulary
            cand = np.sort(part, axis=1)
            order = np.argsort(-np.take_along_axis(sims, cand, 1), axis=1, kind="stable")
            top = np.take_along_axis(cand, order, 1)
        out.extend([vocab.nouns[j] for j in row] for row in top)
    return out


def embed_vocab_nouns_job(
    vocab: str | Path,
    embedder_info: str | Path,
    out: str | Path,
    params: Mapping[str, Any],
    runtime: Mapping[str, Any] | None = None,
    threads: int = 1,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Rule embed_vocab_nouns: load the prepared embedder offline and embed the vocabulary.

    `params`: the embedder key ("embedder") and spec ("spec"), "autocast" and the prompt set
    ("prompts"); `runtime`: the embeddings section's runtime-only keys (batch size, cache
    folder; the schema's defaults where absent).
    """
    import torch

    embedder, _, settings = load_prepared_embedder(
        embedder_info, params, runtime, threads, torch.device(device)
    )
    return embed_vocab_nouns(
        vocab, out, embedder, params["embedder"], params["prompts"], settings["batch_size"]
    )
