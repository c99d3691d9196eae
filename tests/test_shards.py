"""novic.shards: the unit-norm check of shard tables, shard validation and checksums."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tiny_shards import write_cache

from novic.embedders import Embedder
from novic.io import read_metadata
from novic.shards import (
    CHECKSUM_KEY,
    CRC_KEY,
    CacheMismatchError,
    DamagedShardError,
    check_shard,
    content_checksum,
    embedding_table,
    rows_crc32,
    table_arrays,
)

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


def test_shard_records_its_row_group_checksums(cache: Path) -> None:
    shard = cache / "emb/m1-1.parquet"
    meta = read_metadata(shard)
    crcs = json.loads(meta[CRC_KEY])
    with pq.ParquetFile(shard) as f:
        groups = [f.read_row_group(g) for g in range(f.num_row_groups)]
    assert [g.num_rows for g in groups] == [32, 28]
    assert crcs == [rows_crc32(*table_arrays(g)) for g in groups]
    assert meta[CHECKSUM_KEY] == content_checksum([32, 28], crcs)
    assert meta["novic.source"] == "m1-1"


def test_truncated_or_misplaced_shards_are_named(cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "emb"
    shutil.copytree(cache / "emb", root)
    shard = root / "m1-0.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedShardError, match=r"m1-0\.parquet: unreadable embedding shard"):
        check_shard(shard, {})

    # Its sibling copied over it: it holds m1-1's embeddings, not m1-0's.
    shutil.copy(root / "m1-1.parquet", shard)
    with pytest.raises(
        CacheMismatchError,
        match=r"m1-0\.parquet: source mismatch \(novic.source is m1-1, expected the id this path",
    ):
        check_shard(shard, {})
    with pytest.raises(CacheMismatchError, match=r"source mismatch .* expected m1-0\)"):
        check_shard(shard, {}, source="m1-0")
    with pytest.raises(CacheMismatchError, match="content checksum mismatch"):
        check_shard(root / "m1-1.parquet", {}, checksum="0" * 64)


def test_damaged_checksums_are_named(cache: Path, tmp_path: Path) -> None:
    shard = tmp_path / "emb" / "m1-1.parquet"
    shard.parent.mkdir()
    table = pq.read_table(cache / "emb/m1-1.parquet")
    meta = read_metadata(cache / "emb/m1-1.parquet")
    crcs = json.loads(meta[CRC_KEY])
    meta[CRC_KEY] = json.dumps([crcs[1], crcs[0]])
    pq.write_table(table.replace_schema_metadata(meta), shard, row_group_size=32)
    with pytest.raises(DamagedShardError, match=r"m1-1\.parquet: damaged embedding shard"):
        check_shard(shard, {})


def test_shard_without_checksums_is_accepted_with_a_warning(
    cache: Path, tmp_path: Path, caplog
) -> None:
    """A shard written before checksums: the same metadata without them."""
    shard = tmp_path / "emb" / "m1-1.parquet"
    shard.parent.mkdir()
    meta = read_metadata(cache / "emb/m1-1.parquet")
    del meta[CRC_KEY], meta[CHECKSUM_KEY]
    table = pq.read_table(cache / "emb/m1-1.parquet").replace_schema_metadata(meta)
    pq.write_table(table, shard, row_group_size=32)
    with caplog.at_level(logging.WARNING, logger="novic.shards"):
        assert check_shard(shard, {}, checksum="") == 60
    assert f"{shard}: written before embedding shards carried checksums" in caplog.text
