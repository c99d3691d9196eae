"""Text datasets (prompt multisets, LLM captions): Arrow schema, streaming shard writer, readers.

A text dataset is a set of Parquet shards whose rows are one training text each:

    text     string                            the caption, e.g. "a photo of a dog and an apple."
    targets  fixed_size_list<int32>[M]         noun ids in draw order; 0 = no target (padding)
    weights  fixed_size_list<float32>[M]       loss weight of each target; 0 where targets is 0

M is the maximum number of targets per row (MAX_TARGETS = 3 unless a stage asks otherwise), so
sources with different multiset sizes share one schema. Rows with m < M targets are padded
on the right: targets [7, 0, 0], weights [1, 0, 0].

API:
    text_schema(max_targets)                  the Arrow schema above
    text_batch(texts, targets, weights, ...)  build a RecordBatch; pads (N, m) arrays to M
    TextShardWriter(path, metadata, ...)      stream batches into ONE Parquet file in bounded
                                              memory (buffers up to `row_group_rows` rows); the
                                              file appears atomically on close() (or on leaving
                                              a `with` block without error), never half-written
    shard_name(i)                             "part-0003.parquet": the file name of shard i
    read_text(paths)                          a whole (small) dataset as one Table
    iter_text_batches(paths, batch_rows)      stream a dataset batch by batch, shard by shard
    text_num_rows(paths)                      row count from the Parquet footers only

File metadata: the writer adds `novic.max_targets`; callers pass what identifies the data
(artifact name, the vocabulary's content hash, settings), read it back with novic.io.read_metadata.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novic.io import atomic_path

MAX_TARGETS = 3
ROW_GROUP_ROWS = 65_536
META_MAX_TARGETS = "novic.max_targets"


def text_schema(max_targets: int = MAX_TARGETS) -> pa.Schema:
    """The text-dataset schema with `max_targets` target slots."""
    return pa.schema(
        [
            pa.field("text", pa.string(), nullable=False),
            pa.field("targets", pa.list_(pa.int32(), max_targets), nullable=False),
            pa.field("weights", pa.list_(pa.float32(), max_targets), nullable=False),
        ]
    )


TEXT_SCHEMA = text_schema()


def _fixed_list(values: np.ndarray, dtype: Any, width: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=dtype).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def text_batch(
    texts: Sequence[str] | pa.Array,
    targets: np.ndarray | Sequence[Sequence[int]],
    weights: np.ndarray | Sequence[Sequence[float]] | None = None,
    max_targets: int = MAX_TARGETS,
) -> pa.RecordBatch:
    """A RecordBatch of text rows. `targets` is (N, m) with m <= max_targets; it is padded with 0.

    `weights` defaults to 1/k over the k nonzero targets of each row (the reference's multiset
    weights); given explicitly it must be (N, m) like `targets`.
    """
    ids = np.asarray(targets, dtype=np.int32)
    if ids.ndim != 2 or ids.shape[0] != len(texts):
        raise ValueError(f"targets must be (N={len(texts)}, m), got shape {ids.shape}")
    m = ids.shape[1]
    if m > max_targets:
        raise ValueError(f"{m} targets per row but the schema has only {max_targets} slots")
    if weights is None:
        count = np.maximum((ids != 0).sum(axis=1, keepdims=True), 1)
        w = np.where(ids != 0, 1.0 / count, 0.0).astype(np.float32)
    else:
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != ids.shape:
            raise ValueError(f"weights shape {w.shape} differs from targets shape {ids.shape}")
    if m < max_targets:
        ids = np.pad(ids, ((0, 0), (0, max_targets - m)))
        w = np.pad(w, ((0, 0), (0, max_targets - m)))
    text = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
    return pa.RecordBatch.from_arrays(
        [
            text.cast(pa.string()),
            _fixed_list(ids, np.int32, max_targets),
            _fixed_list(w, np.float32, max_targets),
        ],
        schema=text_schema(max_targets),
    )


def shard_name(index: int) -> str:
    """File name of shard `index`: part-0000.parquet, part-0001.parquet, ..."""
    return f"part-{index:04d}.parquet"


class TextShardWriter:
    """Stream text batches into one Parquet file; the file appears atomically when closed.

    Memory stays bounded: batches are buffered until `row_group_rows` rows, then written as one
    row group. Use as a context manager; an exception inside the block discards the file.
    """

    def __init__(
        self,
        path: str | Path,
        metadata: Mapping[str, Any] | None = None,
        max_targets: int = MAX_TARGETS,
        row_group_rows: int = ROW_GROUP_ROWS,
        compression: str = "zstd",
    ) -> None:
        self.path = Path(path)
        self.schema = text_schema(max_targets)
        meta = {k: str(v) for k, v in (metadata or {}).items()}
        meta[META_MAX_TARGETS] = str(max_targets)
        self.schema = self.schema.with_metadata(meta)
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._writer = pq.ParquetWriter(tmp, self.schema, compression=compression)
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append rows (schema as text_schema(max_targets); metadata may differ)."""
        if not batch.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"{self.path}: batch schema {batch.schema} != {self.schema}")
        for part in batch.to_batches() if isinstance(batch, pa.Table) else [batch]:
            self._buffer.append(part)
            self._buffered += part.num_rows
            self.rows += part.num_rows
        while self._buffered >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self._buffer, self.schema)
        self._writer.write_table(table.slice(0, rows), row_group_size=rows)
        rest = table.slice(rows)
        self._buffer = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._buffered = rest.num_rows

    def close(self) -> None:
        """Write what is buffered and move the file into place."""
        if self._buffered:
            self._flush(self._buffered)
        self._writer.close()
        self._stack.close()

    def abort(self) -> None:
        """Discard the file (nothing appears at `path`)."""
        self._writer.close()
        err = RuntimeError("aborted")  # makes atomic_path delete the temporary file
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, err, None)

    def __enter__(self) -> TextShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_text(paths: str | Path | Iterable[str | Path]) -> pa.Table:
    """Read one or more text shards into a single Table (for small data and tests)."""
    tables = [pq.read_table(p) for p in _paths(paths)]
    for path, table in zip(_paths(paths), tables, strict=True):
        if table.schema.names[:3] != ["text", "targets", "weights"]:
            raise ValueError(f"{path}: not a text dataset (columns {table.schema.names})")
    return pa.concat_tables([t.replace_schema_metadata(None) for t in tables])


def iter_text_batches(
    paths: str | Path | Iterable[str | Path], batch_rows: int = ROW_GROUP_ROWS
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of the given shards in order, at most `batch_rows` rows per batch."""
    for path in _paths(paths):
        with pq.ParquetFile(path) as f:
            yield from f.iter_batches(batch_size=batch_rows)


def text_num_rows(paths: str | Path | Iterable[str | Path]) -> int:
    """Total rows of the given shards, read from their footers."""
    return sum(pq.read_metadata(p).num_rows for p in _paths(paths))
