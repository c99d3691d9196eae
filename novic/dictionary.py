"""The noun table shared by the dictionary and every vocabulary: schema, reading, identity.

A row is one canonical object noun. `id` is stable across vocabularies (a vocabulary is a
subset of the dictionary's rows), starts at 1, and 0 means "no noun" wherever ids are stored.
`singulars_freq`/`plurals_freq` are the multiplicities of the aligned variant lists: how many
times each variant is repeated per prompt template.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from novic.io import read_metadata

NOUN_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int32(), nullable=False),
        pa.field("target_noun", pa.string(), nullable=False),
        pa.field("pretty_noun", pa.string(), nullable=False),
        pa.field("singulars", pa.list_(pa.string()), nullable=False),
        pa.field("plurals", pa.list_(pa.string()), nullable=False),
        pa.field("singulars_freq", pa.list_(pa.int32()), nullable=False),
        pa.field("plurals_freq", pa.list_(pa.int32()), nullable=False),
        pa.field("frequency", pa.float64(), nullable=False),
        pa.field("synsets", pa.list_(pa.string()), nullable=False),
    ]
)

# File metadata keys written with every noun table.
META_ARTIFACT = "novic.artifact"  # "dictionary" or "vocab"
META_CONTENT = "novic.content_sha256"  # identity of the table's rows
META_WORDNET = "novic.wordnet_version"
META_THRESHOLD = "novic.threshold"


def read_nouns(path: str | Path) -> pa.Table:
    """Read a dictionary or vocabulary file, checking it has the noun schema."""
    table = pq.read_table(path)
    missing = [f.name for f in NOUN_SCHEMA if f.name not in table.schema.names]
    if missing:
        raise ValueError(f"{path}: not a noun table, missing columns {missing}")
    return table.select(NOUN_SCHEMA.names).cast(NOUN_SCHEMA)


def nouns_fingerprint(path: str | Path) -> str:
    """The content hash a noun table was written with: identifies the vocabulary."""
    meta = read_metadata(path)
    if META_CONTENT not in meta:
        raise ValueError(f"{path}: no {META_CONTENT} in the file metadata; rebuild it")
    return meta[META_CONTENT]
