"""novic.shards: the unit-norm check of shard tables, shard validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_shards import write_cache

from novic.embedders import Embedder
from novic.shards import CacheMismatchError, check_shard, embedding_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rejects_non_unit_embeddings() -> None:
    emb = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="3 embeddings are not unit norm"):
        embedding_table(emb, np.ones((3, 1)), np.ones((3, 1)), "float16")
    emb[:, 1:] = 0
    emb[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 embeddings are not unit norm \(row 1"):
        embedding_table(emb, np.ones((3, 1)), np.ones((3, 1)), "float16")


@pytest.fixture(scope="module")
def cache(tiny: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cache: m1 (2 shards), captions (1 shard), a held-out shard, and its vocabulary."""
    return write_cache(tiny, tmp_path_factory.mktemp("cache"))


def test_check_shard_dim_and_missing(tiny: Embedder, cache: Path) -> None:
    shard = cache / "emb/m1-0.parquet"
    assert check_shard(shard, {"novic.dim": "64"}) == 50
    with pytest.raises(
        CacheMismatchError, match=r"embedding dim mismatch \(novic.dim is 64, expected 768\)"
    ):
        check_shard(shard, {"novic.dim": "768"})
    with pytest.raises(CacheMismatchError, match="does not exist"):
        check_shard(cache / "emb/nope.parquet", {})
    with pytest.raises(CacheMismatchError, match="not an embedding shard"):
        check_shard(cache / "m1-0.texts.parquet", {})
