"""The Parquet embedding-shard format: schema, table building, row order and validation.

An embedding shard is the embedded form of one text shard (novic.textdata), rows shuffled:

    embedding  fixed_size_list<float16 or float32>[F]   unit-norm text embedding
    targets    fixed_size_list<int32>[M]                noun ids, 0 = none (copied from the text)
    weights    fixed_size_list<float32>[M]              loss weights (copied from the text)

Row groups hold `row_group_rows` rows (the loader's unit of reading). File metadata (novic.io.
read_metadata): novic.artifact = "embeddings", novic.embedder (config key),
novic.embedder_spec (JSON), novic.embedder_sha256, novic.dim, novic.dtype, novic.max_targets,
novic.rows, novic.source (the text shard), novic.source_sha256, novic.vocab_sha256,
novic.threshold, novic.shuffle_seed. Shards are written by novic.embed and listed by a run's
mix (novic.mix); check_shard() refuses one whose metadata or row count differs.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novic.io import read_metadata

DTYPES = {"float16": np.float16, "float32": np.float32}
ROW_GROUP_ROWS = 8192
ARTIFACT = "embeddings"


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
