"""The embedding job: one text shard -> one embedding shard (novic.shards), resumable.

embed_shard() writes one shard. It embeds the text rows in a seeded random order in chunks of
`chunk_rows`; each finished chunk is kept in `<shard>.partial/`, so a killed job resumes at the
first missing chunk (a chunk file that cannot be read is embedded again); the shard then appears
atomically, with its checksums (novic.shards.write_shard), and the partial folder is removed.
embed_texts_job() is rule embed_texts: it loads the prepared embedder offline and calls it.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from novic.device import device_name
from novic.embedders import Embedder
from novic.io import atomic_path, read_metadata, sha256_file, write_json
from novic.progress import format_eta
from novic.schema import defaults
from novic.shards import (
    ARTIFACT,
    PARQUET_OPTIONS,
    ROW_GROUP_ROWS,
    CacheMismatchError,
    DamagedShardError,
    embedding_schema,
    embedding_table,
    fixed_list_numpy,
    reading,
    shard_metadata,
    shard_permutation,
    write_shard,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CHUNK_ROWS = 65536


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
    with reading(texts_path, "text shard"):
        table = pq.read_table(texts_path)
    if table.schema.names[:3] != ["text", "targets", "weights"]:
        raise ValueError(f"{texts_path}: not a text dataset (columns {table.schema.names})")
    src_meta = read_metadata(texts_path)
    n = table.num_rows
    max_targets = table.schema.field("targets").type.list_size
    meta = {
        "novic.artifact": ARTIFACT,
        **embedder_metadata(embedder, embedder_key),
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
    todo = [k for k in range(len(chunks)) if not _chunk_done(names[k], len(chunks[k]))]
    done_rows = n - sum(len(chunks[k]) for k in todo)
    if done_rows:
        log.info("%s: resuming, %d of %d rows already embedded", out_path, done_rows, n)
    text_col = table.column("text")
    targets = fixed_list_numpy(table.column("targets"), max_targets)
    weights = fixed_list_numpy(table.column("weights"), max_targets)
    start, embedded = time.perf_counter(), 0
    pool, restore_main = None, None
    if tokenize_workers > 0:  # spawned, not forked: the parent may hold CUDA and OpenMP state
        restore_main = hide_main_script()
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
        if restore_main is not None:
            restore_main()

    # Where the job that finished the shard ran (not part of the resume state: a shard may be
    # resumed on another machine).
    final = schema.with_metadata({**meta, "novic.device": device_name(embedder.device)})
    write_shard(out_path, final, _read_chunks(names), row_group_rows)
    shutil.rmtree(work)
    seconds = time.perf_counter() - start
    log.info("%s: %d rows in %.1f s (%d embedded in this run)", out_path, n, seconds, embedded)
    return {"rows": n, "embedded_now": embedded, "seconds": round(seconds, 3)}


def hide_main_script() -> Callable[[], None]:
    """Keep spawned processes from re-running the main script; returns the undo.

    A spawned child runs the parent's `__main__` file first (as __mp_main__). Snakemake runs a
    rule's script from a copy with its preamble but leaves `__file__` naming the original,
    which fails without the preamble (NameError: snakemake; seen on the first GPU node: only
    GPU jobs tokenize in processes). The tokenizing workers need nothing from `__main__`.
    """
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__"):
        return lambda: None  # run as a module (-m) or interactively: children import safely
    path = main.__file__
    del main.__file__

    def restore() -> None:
        main.__file__ = path

    return restore


def _chunk_done(path: Path, rows: int) -> bool:
    """Whether a finished chunk file is there and readable with `rows` rows (else it is redone)."""
    if not path.exists():
        return False
    try:
        rows_there = shard_metadata(path)[1].num_rows
    except DamagedShardError as e:
        log.warning("%s; embedding that chunk again", e)
        return False
    if rows_there != rows:
        log.warning("%s: %d rows, expected %d; embedding that chunk again", path, rows_there, rows)
        return False
    return True


def _read_chunks(names: Sequence[Path]) -> Iterator[pa.Table]:
    """The row groups of the finished chunk files, in order."""
    for name in names:
        with reading(name), pq.ParquetFile(name) as f:
            for g in range(f.num_row_groups):
                yield f.read_row_group(g)


def embedder_metadata(embedder: Embedder, key: str) -> dict[str, str]:
    """The Parquet metadata that names the embedder of a file of embeddings: its config key,
    spec (JSON), identity hash and dimension."""
    info = embedder.info()
    return {
        "novic.embedder": key,
        "novic.embedder_spec": json.dumps(info["spec"], sort_keys=True),
        "novic.embedder_sha256": info["sha256"],
        "novic.dim": str(embedder.dim),
    }


def load_prepared_embedder(
    embedder_info: str | Path,
    params: Mapping[str, Any],
    runtime: Mapping[str, Any] | None,
    threads: int,
    device: torch.device,
) -> tuple[Embedder, dict[str, Any], dict[str, Any]]:
    """The embedder of a job's params ("embedder" key, "spec", "autocast"), from the local
    cache only, checked against what prepare_embedder recorded in `embedder_info`; with that
    record and the embeddings section's settings (runtime keys over the schema's defaults).

    Torch gets the job's threads on a CPU; on a GPU the other threads tokenize. The tiny
    model's 64-wide matrices run slower on several threads than on one.
    """
    import torch

    from novic.embedders import load_embedder

    info = json.loads(Path(embedder_info).read_text(encoding="utf-8"))
    settings = defaults("embeddings") | dict(runtime or {})
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
    if embedder.sha256 != info.get("sha256"):
        raise CacheMismatchError(
            f"{embedder_info}: embedder {params['embedder']} changed since it was prepared "
            f"({embedder.sha256} != {info.get('sha256')}); rerun prepare_embedder"
        )
    return embedder, info, settings


def embed_texts_job(
    texts: str | Path,
    embedder_info: str | Path,
    out: str | Path,
    shard_id: str,
    params: Mapping[str, Any],
    runtime: Mapping[str, Any] | None = None,
    threads: int = 1,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Rule embed_texts: load the embedder from the local cache only and embed one shard.

    `params` holds what the output depends on (embedder key and spec, dtype, seed, autocast),
    `runtime` the embeddings section's runtime-only keys (batch size, chunking, cache folder;
    the schema's defaults where absent). On a cuda device `threads - 1` processes tokenize the
    next chunk while the GPU encodes.
    """
    import torch

    device = torch.device(device)
    embedder, info, settings = load_prepared_embedder(
        embedder_info, params, runtime, threads, device
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
