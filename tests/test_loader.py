"""novic.loader: mix weights, determinism, worker and rank sharding, bounded memory, and the
checksums of what it reads."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from novic import shards
from novic.io import read_metadata
from novic.loader import EmbeddingLoader
from novic.mix import Mix, MixShard, MixSource, write_mix
from novic.shards import DamagedShardError, embedding_table

DIM = 8


def write_shard(
    path: Path, first_id: int, rows: int, dim: int = DIM, row_group: int = 16
) -> MixShard:
    """A shard whose rows carry their id as first target (ids first_id, first_id + 1, ...)."""
    rng = np.random.default_rng(first_id)
    emb = rng.standard_normal((rows, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    targets = np.zeros((rows, 2), dtype=np.int32)
    targets[:, 0] = np.arange(first_id, first_id + rows)
    weights = np.zeros((rows, 2), dtype=np.float32)
    weights[:, 0] = 1
    table = embedding_table(emb, targets, weights, "float32")
    shards.write_shard(path, table.schema, [table], row_group)
    return MixShard(path, rows)


def make_mix(root: Path, weights: dict[str, float], dim: int = DIM) -> Mix:
    """Sources m1 (ids 1..100, 2 shards) and captions (ids 1001..1040, 1 shard)."""
    shards = {
        "m1": [
            write_shard(root / "m1-0.parquet", 1, 60, dim),
            write_shard(root / "m1-1.parquet", 61, 40, dim),
        ],
        "captions": [write_shard(root / "cap.parquet", 1001, 40, dim)],
    }
    sources = [MixSource(name, w, shards[name]) for name, w in weights.items()]
    return Mix("r", "e", {}, "sha", dim, "float32", 2, "vocab", 9, sources)


def ids(batches: list) -> list[int]:
    return [int(i) for b in batches for i in b.targets[:, 0]]


def test_batches_have_the_documented_types(tmp_path: Path) -> None:
    loader = EmbeddingLoader(make_mix(tmp_path, {"m1": 1}), batch_size=16, buffer_rows=32)
    batch = next(iter(loader.epoch(0)))
    assert batch.embedding.shape == (16, DIM) and batch.embedding.dtype == torch.float32
    assert batch.targets.shape == (16, 2) and batch.targets.dtype == torch.int64
    assert batch.weights.shape == (16, 2) and batch.weights.dtype == torch.float32
    torch.testing.assert_close(batch.embedding.norm(dim=1), torch.ones(16))
    assert (batch.weights[:, 1] == 0).all() and (batch.targets[:, 1] == 0).all()


def test_weights_are_passes_per_epoch(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1, "captions": 2})
    loader = EmbeddingLoader(mix, batch_size=10, buffer_rows=50, drop_last=False)
    counts = collections.Counter(ids(list(loader.epoch(3))))
    assert counts == collections.Counter(
        {**dict.fromkeys(range(1, 101), 1), **dict.fromkeys(range(1001, 1041), 2)}
    )
    assert loader.rows_per_epoch == 180 and len(loader) == 18

    # A fractional weight takes a random subset of whole row groups, the expected share overall.
    half = EmbeddingLoader(make_mix(tmp_path, {"m1": 0.5}), batch_size=10, drop_last=False)
    sizes = [len(ids(list(half.epoch(e)))) for e in range(40)]
    assert abs(np.mean(sizes) - 50) < 8
    assert len(set(sizes)) > 1


def test_deterministic_for_a_seed_and_epoch(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1, "captions": 1})
    first = ids(list(EmbeddingLoader(mix, 8, seed=5, buffer_rows=40).epoch(2)))
    again = ids(list(EmbeddingLoader(mix, 8, seed=5, buffer_rows=40).epoch(2)))
    assert first == again
    assert first != ids(list(EmbeddingLoader(mix, 8, seed=5, buffer_rows=40).epoch(3)))
    assert first != ids(list(EmbeddingLoader(mix, 8, seed=6, buffer_rows=40).epoch(2)))
    # Resuming mid-epoch gives the rest of the same epoch.
    loader = EmbeddingLoader(mix, 8, seed=5, buffer_rows=40)
    assert ids(list(loader.epoch(2, start_batch=3))) == first[3 * 8 :]


def test_rows_are_shuffled_across_row_groups(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1, "captions": 1})
    batch = ids(list(EmbeddingLoader(mix, 20, buffer_rows=60).epoch(0))[:1])
    assert len({i // 16 for i in batch}) >= 3  # rows from several row groups in one batch
    assert batch != sorted(batch)


def test_workers_and_ranks_split_the_epoch(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1, "captions": 1})
    single = ids(list(EmbeddingLoader(mix, 8, buffer_rows=30, drop_last=False).epoch(1)))
    workers = EmbeddingLoader(mix, 8, buffer_rows=30, num_workers=2, drop_last=False)
    split = ids(list(workers.epoch(1)))
    assert sorted(split) == sorted(single) and len(split) == 140
    assert split == ids(list(workers.epoch(1)))  # deterministic with workers too

    ranks = [
        ids(
            list(
                EmbeddingLoader(
                    mix, 8, buffer_rows=30, drop_last=False, rank=r, world_size=2
                ).epoch(1)
            )
        )
        for r in range(2)
    ]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(single)
    with pytest.raises(ValueError, match="rank 2 is not in"):
        EmbeddingLoader(mix, 8, rank=2, world_size=2)


def test_drop_last(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1})
    batches = list(EmbeddingLoader(mix, 30, buffer_rows=40).epoch(0))
    assert [len(b.embedding) for b in batches] == [30, 30, 30]


STREAM = textwrap.dedent(
    """
    import json, sys
    from novic.mix import read_mix
    from novic.loader import EmbeddingLoader

    def peak_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    peaks, rows = [], []
    for path in sys.argv[2:]:
        mix = read_mix(path, check=False)
        loader = EmbeddingLoader(mix, batch_size=256, buffer_rows=int(sys.argv[1]))
        rows.append(sum(len(b.embedding) for b in loader.epoch(0)))
        peaks.append(peak_mb())
    print(json.dumps({"rows": rows, "peaks": peaks}))
    """
)


def test_memory_does_not_grow_with_the_cache(tmp_path: Path) -> None:
    """Peak RSS while streaming a cache 20x the buffer stays within a bound of streaming 2x it.

    The first pass (2 shards, 2x the buffer) brings the buffer and the allocators to their
    working size; the second pass streams 10 shards (78 MB) and may not raise the peak by more
    than a fixed 16 MB, which holding the cache, or a growing part of it, would exceed.
    """
    dim, rows, buffer_rows = 256, 8_000, 4_000  # 1 KB a row: 8 MB per shard, 4 MB of buffer
    shards = [
        write_shard(tmp_path / f"s{k}.parquet", 1 + k * rows, rows, dim, 1000) for k in range(10)
    ]
    paths = []
    for count in (2, 10):
        mix = Mix(
            "r", "e", {}, "sha", dim, "float32", 2, "vocab", 9, [MixSource("m1", 1, shards[:count])]
        )
        paths.append(tmp_path / f"mix{count}.json")
        write_mix(mix, paths[-1])
    out = subprocess.run(
        [sys.executable, "-c", STREAM, str(buffer_rows), *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rows"] == [2 * rows - 2 * rows % 256, 10 * rows - 10 * rows % 256]
    cache_mb = 10 * rows * dim * 4 / 2**20
    growth = result["peaks"][1] - result["peaks"][0]
    assert growth < 16 < cache_mb / 4, result


def flip_bytes(path: Path, group: int, count: int = 64) -> None:
    """Invert `count` bytes in the middle of row group `group`'s embedding column."""
    column = pq.read_metadata(path).row_group(group).column(0)
    start = column.data_page_offset + column.total_compressed_size // 2 - count // 2
    data = bytearray(path.read_bytes())
    data[start : start + count] = bytes(b ^ 0xFF for b in data[start : start + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("compression", "workers"), [("zstd", 2), ("none", 0)])
def test_flipped_bytes_in_a_shard_are_named(
    tmp_path: Path, monkeypatch, compression: str, workers: int
) -> None:
    """Damage the metadata does not show stops the epoch with an error naming the file (from a
    reader process too): a decoding error or the row group's checksum."""
    monkeypatch.setitem(shards.PARQUET_OPTIONS, "compression", compression)
    mix = make_mix(tmp_path, {"m1": 1, "captions": 1})
    flip_bytes(tmp_path / "m1-1.parquet", 1)
    loader = EmbeddingLoader(mix, 8, buffer_rows=30, num_workers=workers)
    try:
        list(loader.epoch(0))
    except DamagedShardError as e:
        message = str(e)
        # Unpinned, the reader processes stop now; collected in a garbage cycle, they would
        # each wait out torch's 5 s shutdown timeout.
        e.__traceback__ = None
    else:
        pytest.fail("the damaged shard was read")
    assert re.search(r"m1-1\.parquet: (unreadable|damaged)", message), message
    if compression == "none":  # the pages decode: only the checksum sees the damage
        assert "row group 1 has CRC-32" in message


def test_a_truncated_shard_is_named(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1})
    path = tmp_path / "m1-0.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DamagedShardError, match=r"m1-0\.parquet: unreadable embedding shard"):
        EmbeddingLoader(mix, 8)


def test_a_shard_other_than_the_mix_records_is_refused(tmp_path: Path) -> None:
    mix = make_mix(tmp_path, {"m1": 1})
    shard = mix.sources[0].shards[1]
    shard.checksum = read_metadata(shard.path)[shards.CHECKSUM_KEY]
    EmbeddingLoader(mix, 8)
    write_shard(shard.path, 1, 40)  # other rows, same count
    with pytest.raises(shards.CacheMismatchError, match=r"m1-1\.parquet: content checksum"):
        EmbeddingLoader(mix, 8)


def test_shards_without_checksums_are_read_unchecked(tmp_path: Path) -> None:
    """Shards written before checksums (plain Parquet, no novic.row_group_crc32) still load."""
    mix = make_mix(tmp_path, {"m1": 1})
    for shard in mix.sources[0].shards:
        pq.write_table(pq.read_table(shard.path), shard.path, row_group_size=16)
        assert shards.CRC_KEY not in read_metadata(shard.path)
    assert sorted(ids(list(EmbeddingLoader(mix, 10, drop_last=False).epoch(0)))) == list(
        range(1, 101)
    )
