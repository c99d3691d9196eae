"""The Parquet embedding cache: shard schema, the resumable shuffling writer, the mix manifest.

An embedding shard is the embedded form of one text shard (novic.textdata), rows shuffled:

    embedding  fixed_size_list<float16 or float32>[F]   unit-norm text embedding
    targets    fixed_size_list<int32>[M]                noun ids, 0 = none (copied from the text)
    weights    fixed_size_list<float32>[M]              loss weights (copied from the text)

Row groups hold `row_group_rows` rows (the loader's unit of reading). File metadata (novic.io.
read_metadata): novic.artifact = "embeddings", novic.embedder (config key),
novic.embedder_spec (JSON), novic.embedder_sha256, novic.dim, novic.dtype, novic.max_targets,
novic.rows, novic.source (the text shard), novic.source_sha256, novic.vocab_sha256,
novic.threshold, novic.shuffle_seed.

embed_shard() writes one shard. It embeds the text rows in a seeded random order in chunks of
`chunk_rows`; each finished chunk is kept in `<shard>.partial/`, so a killed job resumes at the
first missing chunk; the shard then appears atomically and the partial folder is removed.

A mix (results/models/{run}/mix.json) is the training set of a run: a manifest of sources (m1,
m2, m3, captions), each a weight (passes per epoch: captions x4 = 4) and its shards with their
row counts, plus the embedder and noun-table identity. Nothing is copied. read_mix() checks
every shard against it and refuses a cache whose embedder, dim, noun table or row counts differ,
naming the file and the mismatch.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novic.dictionary import nouns_fingerprint
from novic.embedders import Embedder, format_eta
from novic.io import atomic_path, read_metadata, sha256_file, write_json

log = logging.getLogger(__name__)

DTYPES = {"float16": np.float16, "float32": np.float32}
ROW_GROUP_ROWS = 8192
CHUNK_ROWS = 65536
ARTIFACT = "embeddings"
SOURCES = ("m1", "m2", "m3", "captions")
MIX_VERSION = 1


class CacheMismatchError(ValueError):
    """An embedding shard or mix that does not match what it is used with."""


def embedding_schema(dim: int, dtype: str, max_targets: int) -> pa.Schema:
    """The shard schema with embedding dimension `dim` stored as `dtype`."""
    if dtype not in DTYPES:
        raise ValueError(f"embedding dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    value = pa.float16() if dtype == "float16" else pa.float32()
    return pa.schema(
        [
            pa.field("embedding", pa.list_(value, dim), nullable=False),
            pa.field("targets", pa.list_(pa.int32(), max_targets), nullable=False),
            pa.field("weights", pa.list_(pa.float32(), max_targets), nullable=False),
        ]
    )


def _fixed(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values).ravel()), width)


def embedding_table(
    embedding: np.ndarray, targets: np.ndarray, weights: np.ndarray, dtype: str
) -> pa.Table:
    """A shard table from arrays [N, F], [N, M], [N, M]; checks the embeddings are unit norm."""
    norms = np.linalg.norm(embedding.astype(np.float32), axis=1)
    bad = np.flatnonzero(~(np.abs(norms - 1) < 1e-3))
    if bad.size:
        raise ValueError(f"{bad.size} embeddings are not unit norm (row {bad[0]}: {norms[bad[0]]})")
    dim = embedding.shape[1]
    schema = embedding_schema(dim, dtype, targets.shape[1])
    columns = [
        _fixed(embedding.astype(DTYPES[dtype]), dim),
        _fixed(targets.astype(np.int32), targets.shape[1]),
        _fixed(weights.astype(np.float32), weights.shape[1]),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


# Dictionary encoding is useless on embeddings and slows reading 3x; byte-stream-split lets
# zstd compress the exponent bytes of the floats.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["targets.list.element", "weights.list.element"],
    "use_byte_stream_split": ["embedding.list.element"],
}


def fixed_list_numpy(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """A fixed-size-list column as a 2-D numpy array [N, width] (zero-copy when possible)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def shard_permutation(rows: int, seed: int, shard_id: str) -> np.ndarray:
    """The order in which a shard's text rows are written: depends on seed and shard id only."""
    rng = np.random.default_rng([seed, zlib.crc32(shard_id.encode())])
    return rng.permutation(rows)


def _tokenize(tokenizer: Any, texts: list[str]) -> Any:
    return tokenizer(texts)


def _prefetch_tokens(
    embedder: Embedder, chunks: Iterable[tuple[int, list[str]]], pool: Executor | None
) -> Iterator[tuple[int, Any]]:
    """Tokenize chunk k+1 in `pool` while the caller encodes chunk k (or inline without a pool)."""
    if pool is None:
        for k, texts in chunks:
            yield k, embedder.tokenize(texts)
        return
    import torch

    workers = getattr(pool, "_max_workers", 1)
    pending: tuple[int, list[Future]] | None = None
    for k, texts in chunks:
        step = -(-len(texts) // workers)
        futures = [
            pool.submit(_tokenize, embedder.tokenizer, texts[i : i + step])
            for i in range(0, len(texts), step)
        ]
        if pending is not None:
            yield pending[0], torch.cat([f.result() for f in pending[1]])
        pending = (k, futures)
    if pending is not None:
        yield pending[0], torch.cat([f.result() for f in pending[1]])


def embed_shard(
    texts_path: str | Path,
    out_path: str | Path,
    embedder: Embedder,
    embedder_key: str,
    shard_id: str,
    dtype: str = "float16",
    seed: int = 0,
    batch_size: int = 256,
    chunk_rows: int = CHUNK_ROWS,
    row_group_rows: int = ROW_GROUP_ROWS,
    tokenize_workers: int = 0,
) -> dict[str, Any]:
    """Embed one text shard into one embedding shard, shuffled and resumable; return stats.

    `shard_id` (e.g. "prompts/ft2/m1/part-0003") seeds the row order together with `seed`.
    Finished chunks live in `<out_path>.partial/` until the shard is complete; a rerun with the
    same inputs and settings skips them, any other settings start afresh.
    """
    texts_path, out_path = Path(texts_path), Path(out_path)
    chunk_rows = -(-chunk_rows // row_group_rows) * row_group_rows  # whole row groups per chunk
    table = pq.read_table(texts_path)
    if table.schema.names[:3] != ["text", "targets", "weights"]:
        raise ValueError(f"{texts_path}: not a text dataset (columns {table.schema.names})")
    src_meta = read_metadata(texts_path)
    n = table.num_rows
    max_targets = table.schema.field("targets").type.list_size
    info = embedder.info()
    meta = {
        "novic.artifact": ARTIFACT,
        "novic.embedder": embedder_key,
        "novic.embedder_spec": json.dumps(info["spec"], sort_keys=True),
        "novic.embedder_sha256": info["sha256"],
        "novic.dim": str(embedder.dim),
        "novic.dtype": dtype,
        "novic.max_targets": str(max_targets),
        "novic.rows": str(n),
        "novic.source": shard_id,
        "novic.source_sha256": sha256_file(texts_path),
        "novic.vocab_sha256": src_meta.get("novic.vocab_sha256", ""),
        "novic.threshold": src_meta.get("novic.threshold", ""),
        "novic.shuffle_seed": str(seed),
    }
    schema = embedding_schema(embedder.dim, dtype, max_targets).with_metadata(meta)
    work = out_path.with_name(out_path.name + ".partial")
    state = {"meta": meta, "chunk_rows": chunk_rows, "row_group_rows": row_group_rows}
    state_file = work / "state.json"
    if work.exists() and (
        not state_file.exists()
        or json.loads(state_file.read_text()) != json.loads(json.dumps(state))
    ):
        log.info("%s: partial results are from other inputs or settings; starting afresh", work)
        shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        write_json(state, state_file)

    order = shard_permutation(n, seed, shard_id)
    chunks = [order[i : i + chunk_rows] for i in range(0, n, chunk_rows)] or [order]
    names = [work / f"chunk-{k:05d}.parquet" for k in range(len(chunks))]
    todo = [k for k in range(len(chunks)) if not names[k].exists()]
    done_rows = n - sum(len(chunks[k]) for k in todo)
    if done_rows:
        log.info("%s: resuming, %d of %d rows already embedded", out_path, done_rows, n)
    text_col = table.column("text")
    targets = fixed_list_numpy(table.column("targets"), max_targets)
    weights = fixed_list_numpy(table.column("weights"), max_targets)
    start, embedded = time.perf_counter(), 0
    pool = None
    if tokenize_workers > 0:  # spawned, not forked: the parent may hold CUDA and OpenMP state
        pool = ProcessPoolExecutor(tokenize_workers, mp_context=mp.get_context("spawn"))
    try:
        texts = ((k, text_col.take(chunks[k]).to_pylist()) for k in todo)
        for k, tokens in _prefetch_tokens(embedder, texts, pool):
            rows = chunks[k]
            emb = embedder.encode_tokens(tokens, batch_size)
            part = embedding_table(emb, targets[rows], weights[rows], dtype)
            with atomic_path(names[k]) as tmp:
                pq.write_table(
                    part.replace_schema_metadata(meta),
                    tmp,
                    row_group_size=row_group_rows,
                    **PARQUET_OPTIONS,
                )
            embedded += len(rows)
            rate = max(embedded, 1) / (time.perf_counter() - start)
            left = n - done_rows - embedded
            log.info(
                "%s: %d/%d rows (chunk %d/%d), %.0f rows/s, ETA %s",
                out_path.name, n - left, n, k + 1, len(chunks), rate, format_eta(left / rate),
            )  # fmt: skip
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
        for name in names:
            with pq.ParquetFile(name) as f:
                for g in range(f.num_row_groups):
                    group = f.read_row_group(g).replace_schema_metadata(meta)
                    writer.write_table(group, row_group_size=row_group_rows)
    shutil.rmtree(work)
    seconds = time.perf_counter() - start
    log.info("%s: %d rows in %.1f s (%d embedded in this run)", out_path, n, seconds, embedded)
    return {"rows": n, "embedded_now": embedded, "seconds": round(seconds, 3)}


# --- validation -------------------------------------------------------------------------------

CHECKED_KEYS = {
    "novic.embedder_sha256": "embedder",
    "novic.dim": "embedding dim",
    "novic.dtype": "embedding dtype",
    "novic.vocab_sha256": "noun table",
}


def check_shard(path: str | Path, expect: Mapping[str, str], rows: int | None = None) -> int:
    """Check a shard's metadata against `expect` (metadata key -> value) and its row count.

    Returns the row count; raises CacheMismatchError naming the file and the mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise CacheMismatchError(f"{path}: embedding shard does not exist")
    meta = read_metadata(path)
    if meta.get("novic.artifact") != ARTIFACT:
        raise CacheMismatchError(f"{path}: not an embedding shard ({meta.get('novic.artifact')})")
    for key, want in expect.items():
        got = meta.get(key, "<missing>")
        if got != str(want):
            what = CHECKED_KEYS.get(key, key)
            raise CacheMismatchError(f"{path}: {what} mismatch ({key} is {got}, expected {want})")
    footer = pq.read_metadata(path).num_rows
    if str(footer) != meta.get("novic.rows"):
        raise CacheMismatchError(
            f"{path}: row count mismatch ({footer} rows, metadata says {meta.get('novic.rows')})"
        )
    if rows is not None and footer != rows:
        raise CacheMismatchError(
            f"{path}: row count mismatch ({footer} rows, the mix expects {rows})"
        )
    return footer


# --- the mix manifest -------------------------------------------------------------------------


@dataclass
class MixShard:
    path: Path
    rows: int


@dataclass
class MixSource:
    """One data source of a mix: `weight` passes over its shards per epoch."""

    name: str
    weight: float
    shards: list[MixShard]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)


@dataclass
class Mix:
    """A run's training data: weighted sources over embedding shards (see the module doc)."""

    run: str
    embedder: str
    embedder_spec: dict[str, Any]
    embedder_sha256: str
    dim: int
    dtype: str
    max_targets: int
    vocab_sha256: str
    threshold: int
    sources: list[MixSource]
    heldout: dict[str, MixShard] = field(default_factory=dict)
    path: Path | None = None

    @property
    def epoch_rows(self) -> float:
        """Expected rows per epoch: sum of weight x rows over the sources."""
        return sum(s.weight * s.rows for s in self.sources)

    def expect(self) -> dict[str, str]:
        return {
            "novic.embedder_sha256": self.embedder_sha256,
            "novic.dim": str(self.dim),
            "novic.dtype": self.dtype,
            "novic.vocab_sha256": self.vocab_sha256,
        }

    def shards(self) -> Iterator[tuple[MixSource | None, MixShard]]:
        for source in self.sources:
            for shard in source.shards:
                yield source, shard
        for shard in self.heldout.values():
            yield None, shard


def build_mix(
    run: str,
    embedder_key: str,
    embedder_info: Mapping[str, Any],
    vocab: str | Path,
    threshold: int,
    sources: Mapping[str, tuple[float, Sequence[str | Path]]],
    heldout: Mapping[str, str | Path] | None = None,
) -> Mix:
    """Build and check the mix of a run: `sources` maps name -> (weight, shard paths)."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"runs.{run}.mix: unknown sources {unknown} (known: {list(SOURCES)})")
    first = next((Path(p) for _, paths in sources.values() for p in paths), None)
    if first is None:
        raise ValueError(f"runs.{run}.mix: no source with a positive weight")
    meta = read_metadata(first)
    mix = Mix(
        run=run,
        embedder=embedder_key,
        embedder_spec=dict(embedder_info["spec"]),
        embedder_sha256=embedder_info["sha256"],
        dim=int(embedder_info["dim"]),
        dtype=meta.get("novic.dtype", ""),
        max_targets=0,
        vocab_sha256=nouns_fingerprint(vocab),
        threshold=threshold,
        sources=[],
    )
    expect = mix.expect()
    for name, (weight, paths) in sources.items():
        shards = [MixShard(Path(p), check_shard(p, expect)) for p in paths]
        mix.sources.append(MixSource(name, float(weight), shards))
    for name, p in (heldout or {}).items():
        mix.heldout[name] = MixShard(Path(p), check_shard(p, expect))
    mix.max_targets = max(int(read_metadata(s.path)["novic.max_targets"]) for _, s in mix.shards())
    return mix


def write_mix(mix: Mix, path: str | Path) -> None:
    """Write the manifest as JSON; shard paths are stored relative to its folder."""
    path = Path(path)
    base = path.parent.resolve()

    def shard(s: MixShard) -> dict[str, Any]:
        return {"path": os.path.relpath(s.path.resolve(), base), "rows": s.rows}

    obj = {
        "version": MIX_VERSION,
        "run": mix.run,
        "embedder": mix.embedder,
        "embedder_spec": mix.embedder_spec,
        "embedder_sha256": mix.embedder_sha256,
        "dim": mix.dim,
        "dtype": mix.dtype,
        "max_targets": mix.max_targets,
        "vocab_sha256": mix.vocab_sha256,
        "threshold": mix.threshold,
        "epoch_rows": mix.epoch_rows,
        "sources": [
            {
                "name": s.name,
                "weight": s.weight,
                "rows": s.rows,
                "shards": [shard(x) for x in s.shards],
            }
            for s in mix.sources
        ],
        "heldout": {name: shard(s) for name, s in mix.heldout.items()},
    }
    write_json(obj, path)


def read_mix(
    path: str | Path,
    vocab: str | Path | None = None,
    embedder_sha256: str | None = None,
    check: bool = True,
) -> Mix:
    """Read a mix manifest; with `check`, verify every shard (and `vocab` / the embedder hash).

    Raises CacheMismatchError naming the file and what differs: the embedder, the embedding
    dim or dtype, the noun table, or a row count.
    """
    path = Path(path)
    obj = json.loads(path.read_text(encoding="utf-8"))
    if obj.get("version") != MIX_VERSION:
        raise CacheMismatchError(
            f"{path}: mix version {obj.get('version')}, expected {MIX_VERSION}"
        )
    base = path.parent

    def shard(d: Mapping[str, Any]) -> MixShard:
        return MixShard(base / d["path"], int(d["rows"]))

    mix = Mix(
        run=obj["run"],
        embedder=obj["embedder"],
        embedder_spec=obj["embedder_spec"],
        embedder_sha256=obj["embedder_sha256"],
        dim=int(obj["dim"]),
        dtype=obj["dtype"],
        max_targets=int(obj["max_targets"]),
        vocab_sha256=obj["vocab_sha256"],
        threshold=int(obj["threshold"]),
        sources=[
            MixSource(s["name"], float(s["weight"]), [shard(x) for x in s["shards"]])
            for s in obj["sources"]
        ],
        heldout={name: shard(s) for name, s in obj.get("heldout", {}).items()},
        path=path,
    )
    if embedder_sha256 is not None and embedder_sha256 != mix.embedder_sha256:
        raise CacheMismatchError(
            f"{path}: embedder mismatch (the mix was built with {mix.embedder} "
            f"{mix.embedder_sha256}, expected {embedder_sha256})"
        )
    if vocab is not None:
        got = nouns_fingerprint(vocab)
        if got != mix.vocab_sha256:
            raise CacheMismatchError(
                f"{path}: noun table mismatch ({vocab} is {got}, the mix has {mix.vocab_sha256})"
            )
    if check:
        expect = mix.expect()
        for _, s in mix.shards():
            check_shard(s.path, expect, s.rows)
    return mix


def embed_texts_job(
    texts: str | Path,
    embedder_info: str | Path,
    out: str | Path,
    shard_id: str,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    threads: int = 1,
    gpus: int = 0,
) -> dict[str, Any]:
    """Rule embed_texts: load the embedder from the local cache only and embed one shard.

    `params` holds what the output depends on (embedder key and spec, dtype, seed, autocast),
    `settings` the config's `embeddings` section (batch size, chunking, cache folder). The
    device is cuda when the job was given a GPU and one is visible; there `threads - 1`
    processes tokenize the next chunk while the GPU encodes.
    """
    import torch

    from novic.embedders import load_embedder, pick_device

    info = json.loads(Path(embedder_info).read_text(encoding="utf-8"))
    device = pick_device(gpus)
    # On a GPU the job's other threads tokenize; on the CPU they compute, except for the tiny
    # model, whose 64-wide matrices run slower on several threads than on one.
    tiny = "tiny" in params["spec"]
    torch.set_num_threads(max(1, threads if device.type == "cpu" and not tiny else 1))
    embedder = load_embedder(
        params["spec"],
        device,
        cache_dir=settings.get("cache_dir") or None,
        offline=True,
        autocast=params["autocast"],
        key=params["embedder"],
    )
    if embedder.sha256 != info["sha256"]:
        raise CacheMismatchError(
            f"{embedder_info}: embedder {params['embedder']} changed since it was prepared "
            f"({embedder.sha256} != {info['sha256']}); rerun prepare_embedder"
        )
    log.info(
        "%s: %s on %s (%s context)",
        shard_id, info["description"], device,
        "truncated" if embedder.truncates else "full",
    )  # fmt: skip
    return embed_shard(
        texts,
        out,
        embedder,
        params["embedder"],
        shard_id,
        dtype=params["dtype"],
        seed=params["seed"],
        batch_size=settings["batch_size"],
        chunk_rows=settings["chunk_rows"],
        row_group_rows=settings["row_group_rows"],
        tokenize_workers=threads - 1 if device.type == "cuda" else 0,
    )
