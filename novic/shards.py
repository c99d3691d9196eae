"""The Parquet embedding-shard format: schema, table building, row order and validation.

An embedding shard is the embedded form of one text shard (novic.textdata), rows shuffled:

    embedding  fixed_size_list<float16 or float32>[F]   unit-norm text embedding
    targets    fixed_size_list<int32>[M]                noun ids, 0 = none (copied from the text)
    weights    fixed_size_list<float32>[M]              loss weights (copied from the text)

Row groups hold `row_group_rows` rows (the loader's unit of reading). File metadata (novic.io.
read_metadata): novic.artifact = "embeddings", novic.embedder (config key),
novic.embedder_spec (JSON), novic.embedder_sha256, novic.dim, novic.dtype, novic.max_targets,
novic.rows, novic.source (the text shard's id, e.g. prompts/ft2/m1/part-0003, which the shard's
path ends with), novic.source_sha256, novic.vocab_sha256, novic.threshold, novic.shuffle_seed,
and the checksums written by write_shard(): novic.row_group_crc32 (JSON list: the CRC-32 of
each row group's decoded values, checked by the loader as it reads them) and
novic.content_sha256 (of the row counts and CRCs: the shard's content, recorded by the mix).
Shards are written by novic.embed and listed by a run's mix (novic.mix); check_shard() refuses
one whose metadata, source, row count or checksum differs, and DamagedShardError names a file
that cannot be read or fails a checksum. Shards written before checksums are accepted with a
warning; their content is not verified.
"""

from __future__ import annotations

import contextlib
import json
import logging
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novic.io import atomic_path, sha256_json

log = logging.getLogger(__name__)

DTYPES = {"float16": np.float16, "float32": np.float32}
ROW_GROUP_ROWS = 8192
ARTIFACT = "embeddings"
COLUMNS = ("embedding", "targets", "weights")
CRC_KEY = "novic.row_group_crc32"
CHECKSUM_KEY = "novic.content_sha256"
REEMBED = "delete it and rerun the workflow to embed it again"


class CacheMismatchError(ValueError):
    """An embedding shard or mix that does not match what it is used with."""


class DamagedShardError(CacheMismatchError):
    """An embedding shard that cannot be read (truncated, damaged) or fails its checksum."""


@contextlib.contextmanager
def reading(path: str | Path, what: str = "embedding shard") -> Iterator[None]:
    """Re-raise pyarrow's errors while reading `path` as DamagedShardError naming the file."""
    try:
        yield
    except (pa.ArrowException, OSError) as e:
        raise DamagedShardError(f"{path}: unreadable {what}, truncated or damaged ({e})") from e


def shard_metadata(path: str | Path) -> tuple[dict[str, str], pq.FileMetaData]:
    """A shard's key-value metadata and its Parquet footer; DamagedShardError if unreadable."""
    with reading(path):
        footer = pq.read_metadata(path)
    raw = footer.metadata or {}
    meta = {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}
    return meta, footer


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


# --- checksums --------------------------------------------------------------------------------


def rows_crc32(*arrays: np.ndarray) -> str:
    """CRC-32 (8 hex digits) of the bytes of `arrays` in order: a row group's decoded values."""
    crc = 0
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a), crc)
    return f"{crc:08x}"


def table_arrays(table: pa.Table) -> list[np.ndarray]:
    """The embedding, targets and weights columns of a shard table as 2-D arrays."""
    return [
        fixed_list_numpy(table.column(name), table.schema.field(name).type.list_size)
        for name in COLUMNS
    ]


def content_checksum(rows: Iterable[int], crcs: Iterable[str]) -> str:
    """The shard's content checksum: SHA-256 of its row-group sizes and CRCs."""
    return sha256_json([[int(r), c] for r, c in zip(rows, crcs, strict=True)])


def write_shard(
    path: str | Path, schema: pa.Schema, tables: Iterable[pa.Table], row_group_rows: int
) -> int:
    """Write `tables` as one shard, atomically, in row groups of at most `row_group_rows` rows
    (each table starts a new group), with the checksums in the metadata; return the rows."""
    sizes: list[int] = []
    crcs: list[str] = []
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
        for table in tables:
            for start in range(0, table.num_rows, row_group_rows):
                group = table.slice(start, row_group_rows).replace_schema_metadata(schema.metadata)
                sizes.append(group.num_rows)
                crcs.append(rows_crc32(*table_arrays(group)))
                writer.write_table(group, row_group_size=row_group_rows)
        writer.add_key_value_metadata(
            {CRC_KEY: json.dumps(crcs), CHECKSUM_KEY: content_checksum(sizes, crcs)}
        )
    return sum(sizes)


def row_group_crcs(
    path: str | Path, meta: Mapping[str, str], footer: pq.FileMetaData
) -> list[str] | None:
    """The recorded CRC of each row group (None for a shard written before checksums).

    Raises DamagedShardError if they do not fit the footer's row groups or the content checksum.
    """
    if CRC_KEY not in meta:
        return None
    try:
        crcs = json.loads(meta[CRC_KEY])
        sizes = [footer.row_group(g).num_rows for g in range(footer.num_row_groups)]
        ok = len(crcs) == len(sizes) and content_checksum(sizes, crcs) == meta.get(CHECKSUM_KEY)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise DamagedShardError(
            f"{path}: damaged embedding shard (its row groups do not match {CRC_KEY} and "
            f"{CHECKSUM_KEY}); {REEMBED}"
        )
    return crcs


def check_rows(path: str | Path, group: int, crc: str | None, *arrays: np.ndarray) -> None:
    """Raise DamagedShardError if a row group's decoded `arrays` do not have its recorded CRC."""
    if crc is not None and (got := rows_crc32(*arrays)) != crc:
        raise DamagedShardError(
            f"{path}: damaged embedding shard (row group {group} has CRC-32 {got}, "
            f"{CRC_KEY} records {crc}); {REEMBED}"
        )


def in_place(path: str | Path, source: str) -> bool:
    """Whether `path` is where the shard of `source` belongs: it ends with `<source>.parquet`."""
    parts = source.split("/")
    return bool(source) and list(Path(path).with_suffix("").parts[-len(parts) :]) == parts


# --- validation -------------------------------------------------------------------------------

CHECKED_KEYS = {
    "novic.embedder_sha256": "embedder",
    "novic.embedder": "embedder key",
    "novic.dim": "embedding dim",
    "novic.dtype": "embedding dtype",
    "novic.vocab_sha256": "noun table",
}


def check_shard(
    path: str | Path,
    expect: Mapping[str, str],
    rows: int | None = None,
    source: str | None = None,
    checksum: str | None = None,
) -> int:
    """Check a shard's metadata against `expect` (metadata key -> value), its row count, source
    and checksum; return the row count.

    `source`: the text shard id it must hold (default: the one its path ends with, see
    in_place). `checksum`: the content checksum it must have ("" for none; None: not checked).
    The recorded row-group CRCs must fit the footer (the rows themselves are checked as the
    loader reads them). Raises CacheMismatchError, or DamagedShardError for a file that cannot
    be read, naming the file and the mismatch; a shard without checksums is logged.
    """
    path = Path(path)
    if not path.is_file():
        raise CacheMismatchError(f"{path}: embedding shard does not exist")
    meta, footer = shard_metadata(path)
    if meta.get("novic.artifact") != ARTIFACT:
        raise CacheMismatchError(f"{path}: not an embedding shard ({meta.get('novic.artifact')})")
    for key, want in expect.items():
        got = meta.get(key, "<missing>")
        if got != str(want):
            what = CHECKED_KEYS.get(key, key)
            raise CacheMismatchError(f"{path}: {what} mismatch ({key} is {got}, expected {want})")
    if str(footer.num_rows) != meta.get("novic.rows"):
        raise DamagedShardError(
            f"{path}: row count mismatch ({footer.num_rows} rows, metadata says "
            f"{meta.get('novic.rows')}); {REEMBED}"
        )
    if rows is not None and footer.num_rows != rows:
        raise CacheMismatchError(
            f"{path}: row count mismatch ({footer.num_rows} rows, the mix expects {rows})"
        )
    got = meta.get("novic.source", "")
    if not (got == source if source is not None else in_place(path, got)):
        want = source if source is not None else "the id this path ends with"
        raise CacheMismatchError(
            f"{path}: source mismatch (novic.source is {got or '<missing>'}, expected {want}): "
            f"the file holds the embeddings of another text shard; {REEMBED}"
        )
    if checksum is not None and meta.get(CHECKSUM_KEY, "") != checksum:
        raise CacheMismatchError(
            f"{path}: content checksum mismatch ({CHECKSUM_KEY} is "
            f"{meta.get(CHECKSUM_KEY, '<missing>')}, the mix records {checksum or 'none'}): the "
            "shard changed after the mix was written; delete the mix and rerun the workflow"
        )
    if row_group_crcs(path, meta, footer) is None:
        log.warning(
            "%s: written before embedding shards carried checksums, so damage to its rows "
            "goes unnoticed; %s to add them",
            path,
            REEMBED,
        )
    return footer.num_rows
