"""Small noun tables, text shards and embedding shards of the tiny CLIP (tests of novic.shards,
novic.embed and novic.mix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from novic.dictionary import META_CONTENT, noun_row, noun_table
from novic.embed import embed_shard
from novic.embedders import Embedder
from novic.io import write_parquet
from novic.textdata import TextShardWriter, text_batch

NOUNS = ["dog", "cat", "apple", "fire truck", "x-ray machine", "lighthouse", "chair"]


def write_vocab(path: Path, content: str = "vocab-a") -> Path:
    table = noun_table(noun_row(i, [noun], frequency=1e-5) for i, noun in enumerate(NOUNS, 1))
    write_parquet(table, path, {META_CONTENT: content})
    return path


def write_texts(path: Path, rows: int, vocab_sha: str = "vocab-a", m: int = 2) -> Path:
    rng = np.random.default_rng(rows)
    targets = rng.integers(1, len(NOUNS) + 1, (rows, m))
    texts = [
        f"a photo of {' and '.join(f'a {NOUNS[t - 1]}' for t in row)} number {i}."
        for i, row in enumerate(targets)
    ]
    meta = {"novic.vocab_sha256": vocab_sha, "novic.threshold": "9"}
    with TextShardWriter(path, meta) as writer:
        writer.write(text_batch(texts, targets))
    return path


def embed(
    tiny: Embedder, texts: Path, out: Path, shard_id: str = "prompts/ft9/m2/part-0000", **kwargs
) -> dict:
    settings = {"chunk_rows": 64, "row_group_rows": 32, "batch_size": 16, **kwargs}
    return embed_shard(texts, out, tiny, "tiny", shard_id, **settings)


def write_cache(tiny: Embedder, root: Path) -> Path:
    """A small cache: m1 (2 shards), captions (1 shard), a held-out shard, and its vocabulary.

    Shard emb/NAME.parquet holds text shard NAME (its source id), as the workflow's paths do.
    """
    write_vocab(root / "vocab.parquet")
    for name, rows in [("m1-0", 50), ("m1-1", 60), ("cap-0", 30), ("heldout", 20)]:
        write_texts(root / f"{name}.texts.parquet", rows)
        embed(tiny, root / f"{name}.texts.parquet", root / "emb" / f"{name}.parquet", name)
    return root
