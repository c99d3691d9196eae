"""The noun table shared by the dictionary and every vocabulary: schema, reading, identity.

A row is one canonical object noun. `id` is stable across vocabularies (a vocabulary is a
subset of the dictionary's rows), starts at 1, and 0 means "no noun" wherever ids are stored.
`singulars_freq`/`plurals_freq` are the multiplicities of the aligned variant lists: how many
times each variant is repeated per prompt template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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
        # summed multiplicity without the class-list floor (0: a noun only a class list added;
        # null: not known, as for the reference's dictionary)
        pa.field("organic_multiplicity", pa.int32(), nullable=True),
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


def noun_row(
    noun_id: int,
    singulars: Sequence[str],
    plurals: Sequence[str] = (),
    *,
    singulars_freq: Sequence[int] | None = None,
    plurals_freq: Sequence[int] | None = None,
    frequency: float = 1.0,
    target: str | None = None,
    pretty: str | None = None,
) -> dict[str, Any]:
    """One row of a hand-written noun table: the target noun defaults to the first singular,
    the display noun to the target, every multiplicity to 1."""
    target = singulars[0] if target is None else target
    return {
        "id": noun_id,
        "target_noun": target,
        "pretty_noun": target if pretty is None else pretty,
        "singulars": list(singulars),
        "plurals": list(plurals),
        "singulars_freq": [1] * len(singulars) if singulars_freq is None else list(singulars_freq),
        "plurals_freq": [1] * len(plurals) if plurals_freq is None else list(plurals_freq),
        "frequency": frequency,
        "synsets": [],
        "organic_multiplicity": None,
    }


def noun_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """A noun table (NOUN_SCHEMA) from rows such as noun_row's."""
    return pa.Table.from_pylist(list(rows), schema=NOUN_SCHEMA)
