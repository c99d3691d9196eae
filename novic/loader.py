"""Streaming training loader over an embedding mix: bounded memory, deterministic for a seed.

The training rule gets `results/models/{run}/mix.json` (written by novic.mix.write_mix, read
by novic.mix.read_mix): the run's embedding shards grouped by source (m1, m2, m3, captions),
each source with a sampling weight. Weight w means "w passes over this source per epoch":
captions x4 is weight 4; a fractional weight takes a random subset of the source's row groups.

API (what a training loop uses):

    from novic.mix import read_mix
    from novic.loader import EmbeddingLoader, Batch

    mix = read_mix("results/models/run/mix.json")      # validated against the noun table
    loader = EmbeddingLoader(
        mix,
        batch_size=8192,        # rows per batch
        seed=0,                 # the whole order depends only on (seed, epoch)
        buffer_rows=1 << 20,    # shuffle buffer per worker (bounds memory, see below)
        num_workers=2,          # reader processes (0 = read in the calling process)
        drop_last=True,         # incomplete final batch dropped (the reference drops it too)
        rank=0, world_size=1,   # distributed training: each rank streams a disjoint share
        pin_memory=False,       # pin batches for a faster host-to-GPU copy
    )
    loader.dim, loader.max_targets  # F and M
    loader.rows_per_epoch           # rows one epoch yields on this rank (before drop_last)
    len(loader)                     # batches one epoch yields on this rank (approximate
                                    # when workers > 0 and drop_last: each worker drops its own
                                    # incomplete batch)
    for epoch in range(epochs):
        for batch in loader.epoch(epoch, start_batch=0):   # start_batch: resume mid-epoch
            batch.embedding   # torch.float32 [B, F], unit norm (cast from the cache dtype)
            batch.targets     # torch.int64   [B, M], noun ids, 0 = none (padding)
            batch.weights     # torch.float32 [B, M], 0 where targets is 0
            batch.to(device, non_blocking=True)   # -> a Batch on the device

Order: each epoch, every (shard, row group) unit of the mix is repeated by its source's weight,
the list is shuffled with (seed, epoch) and dealt round-robin to ranks and then to workers; each
worker reads its units in that order into a shuffle buffer of `buffer_rows` rows and emits
uniformly random rows of the buffer. Shards are also shuffled on write, so neighbouring rows
are unrelated from the start. The same (seed, epoch, num_workers, world_size) gives the same
batches in the same order.

Memory: a worker holds its buffer (buffer_rows x (2F or 4F + 8M) bytes), one row group and one
batch, whatever the size of the cache.

Integrity: every row group read is checked against the CRC-32 its shard records
(novic.shards.write_shard; CRC-32 runs at about 4 GB/s, some 5% of the time to decode a row
group of 768-d float16 rows), and a shard whose recorded checksums do not fit its footer, or
differ from what the mix records, is refused when the loader is made. A damaged, truncated or
replaced shard raises DamagedShardError (or CacheMismatchError) naming the file. Shards written
before checksums are read unchecked.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from novic.mix import Mix
from novic.shards import (
    CHECKSUM_KEY,
    CacheMismatchError,
    DamagedShardError,
    check_rows,
    fixed_list_numpy,
    reading,
    row_group_crcs,
    shard_metadata,
)


class Batch(NamedTuple):
    """One training batch: embeddings [B, F] float32, targets [B, M] int64, weights [B, M]."""

    embedding: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in self))

    def pin_memory(self) -> Batch:  # called by DataLoader(pin_memory=True)
        return Batch(*(t.pin_memory() for t in self))


@dataclass(frozen=True)
class Unit:
    """One row group of one shard: the unit of reading and of shuffling the read order."""

    path: Path
    group: int
    rows: int
    crc32: str | None = None  # recorded CRC of its decoded values (None: not checked)


def mix_units(mix: Mix) -> list[tuple[float, list[Unit]]]:
    """Per training source: its weight and its row groups (read from the Parquet footers).

    Raises DamagedShardError for a shard whose footer cannot be read or whose checksums do not
    fit it, CacheMismatchError for one whose checksum is not the one the mix records.
    """
    out = []
    for source in mix.sources:
        units = []
        for shard in source.shards:
            meta, footer = shard_metadata(shard.path)
            if shard.checksum is not None and meta.get(CHECKSUM_KEY, "") != shard.checksum:
                raise CacheMismatchError(
                    f"{shard.path}: content checksum mismatch ({CHECKSUM_KEY} is "
                    f"{meta.get(CHECKSUM_KEY, '<missing>')}, the mix records "
                    f"{shard.checksum or 'none'}): the shard changed after the mix was "
                    "written; delete the mix and rerun the workflow"
                )
            crcs = row_group_crcs(shard.path, meta, footer)
            units += [
                Unit(shard.path, g, footer.row_group(g).num_rows, crcs[g] if crcs else None)
                for g in range(footer.num_row_groups)
            ]
        out.append((source.weight, units))
    return out


def epoch_units(sources: list[tuple[float, list[Unit]]], seed: int, epoch: int) -> list[Unit]:
    """The shuffled read order of one epoch: each source's units repeated by its weight.

    A fractional weight adds a random subset of the source's units, its size rounded up or down
    at random so that the expected count is exact.
    """
    rng = np.random.default_rng([seed, epoch, 0])
    units: list[Unit] = []
    for weight, source in sources:
        whole, frac = int(weight), weight - int(weight)
        units += source * whole
        extra = int(frac * len(source) + rng.random())
        if extra:
            units += [source[i] for i in np.sort(rng.choice(len(source), extra, replace=False))]
    return [units[i] for i in rng.permutation(len(units))]


class ShuffleBuffer:
    """A fixed-capacity row buffer: new rows replace uniformly random old rows, which leave."""

    def __init__(self, capacity: int, dim: int, max_targets: int, dtype: np.dtype, seed: list[int]):
        self.emb = np.empty((capacity, dim), dtype=dtype)
        self.tgt = np.empty((capacity, max_targets), dtype=np.int32)
        self.wts = np.empty((capacity, max_targets), dtype=np.float32)
        self.capacity, self.size = capacity, 0
        self.rng = np.random.default_rng(seed)

    def push(
        self, emb: np.ndarray, tgt: np.ndarray, wts: np.ndarray
    ) -> Iterator[tuple[np.ndarray, ...]]:
        """Add rows; yield the rows they push out (as arrays), once the buffer is full."""
        for start in range(0, len(emb), self.capacity):
            e, t, w = (a[start : start + self.capacity] for a in (emb, tgt, wts))
            free = min(self.capacity - self.size, len(e))
            if free:
                end = self.size + free
                self.emb[self.size : end], self.tgt[self.size : end], self.wts[self.size : end] = (
                    e[:free], t[:free], w[:free],
                )  # fmt: skip
                self.size = end
                e, t, w = e[free:], t[free:], w[free:]
            if len(e):
                slots = self.rng.choice(self.capacity, len(e), replace=False)
                yield self.emb[slots], self.tgt[slots], self.wts[slots]
                self.emb[slots], self.tgt[slots], self.wts[slots] = e, t, w

    def drain(self, piece: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Yield the remaining rows in random order, `piece` rows at a time; empty the buffer."""
        order = self.rng.permutation(self.size)
        self.size = 0
        for start in range(0, len(order), piece):
            rows = order[start : start + piece]
            yield self.emb[rows], self.tgt[rows], self.wts[rows]


def read_unit(unit: Unit, dim: int, max_targets: int) -> tuple[np.ndarray, ...]:
    """The arrays of one row group; targets and weights padded to `max_targets` columns.

    Raises DamagedShardError naming the file if it cannot be read or fails its checksum.
    """
    with reading(unit.path), pq.ParquetFile(unit.path) as f:
        table = f.read_row_group(unit.group)
        m = table.schema.field("targets").type.list_size
        emb = fixed_list_numpy(table.column("embedding"), dim)
        tgt = fixed_list_numpy(table.column("targets"), m)
        wts = fixed_list_numpy(table.column("weights"), m)
    if len(emb) != unit.rows:
        raise DamagedShardError(
            f"{unit.path}: damaged embedding shard (row group {unit.group} has {len(emb)} rows, "
            f"its footer said {unit.rows})"
        )
    check_rows(unit.path, unit.group, unit.crc32, emb, tgt, wts)
    if m < max_targets:
        tgt = np.pad(tgt, ((0, 0), (0, max_targets - m)))
        wts = np.pad(wts, ((0, 0), (0, max_targets - m)))
    return emb, tgt, wts


def read_ahead(units: list[Unit], dim: int, max_targets: int) -> Iterator[tuple[np.ndarray, ...]]:
    """read_unit over `units`, reading the next unit in a thread while the caller works."""
    with ThreadPoolExecutor(1) as pool:
        pending: collections.deque[Future] = collections.deque()
        for unit in units:
            pending.append(pool.submit(read_unit, unit, dim, max_targets))
            if len(pending) > 1:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _to_batch(emb: np.ndarray, tgt: np.ndarray, wts: np.ndarray) -> Batch:
    return Batch(
        torch.from_numpy(emb).float(),
        torch.from_numpy(tgt).long(),
        torch.from_numpy(np.ascontiguousarray(wts)),
    )


def stream_batches(
    units: list[Unit],
    dim: int,
    max_targets: int,
    dtype: np.dtype,
    batch_size: int,
    buffer_rows: int,
    seed: list[int],
    drop_last: bool = True,
) -> Iterator[Batch]:
    """Read `units` in order through a shuffle buffer and yield batches of `batch_size` rows."""
    buffer = ShuffleBuffer(max(buffer_rows, 1), dim, max_targets, dtype, seed)
    parts: list[tuple[np.ndarray, ...]] = []
    pending = 0

    def flush(final: bool) -> Iterator[Batch]:
        nonlocal parts, pending
        if not parts:
            return
        arrays = [np.concatenate(a) if len(parts) > 1 else a[0] for a in zip(*parts, strict=True)]
        full = pending // batch_size * batch_size
        for start in range(0, full, batch_size):
            yield _to_batch(*(a[start : start + batch_size] for a in arrays))
        rest = [a[full:] for a in arrays]
        parts, pending = ([rest], pending - full) if pending > full else ([], 0)
        if final and pending and not drop_last:
            yield _to_batch(*rest)

    for arrays in read_ahead(units, dim, max_targets):
        for out in buffer.push(*arrays):
            parts.append(out)
            pending += len(out[0])
            if pending >= batch_size:
                yield from flush(False)
    for out in buffer.drain(batch_size):
        parts.append(out)
        pending += len(out[0])
    yield from flush(True)


class _EpochStream(IterableDataset):
    """One epoch of one rank: the DataLoader gives each worker its share of the units."""

    def __init__(self, loader: EmbeddingLoader, epoch: int) -> None:
        self.loader, self.epoch = loader, epoch

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        ld = self.loader
        units = ld.rank_units(self.epoch)[worker::workers]
        seed = [ld.seed, self.epoch, 1, ld.rank, worker]
        yield from stream_batches(
            units,
            ld.dim,
            ld.max_targets,
            ld.dtype,
            ld.batch_size,
            ld.buffer_rows,
            seed,
            ld.drop_last,
        )


class EmbeddingLoader:
    """Streams a mix's shards as shuffled batches; see the module docstring for the API."""

    def __init__(
        self,
        mix: Mix,
        batch_size: int,
        seed: int = 0,
        buffer_rows: int = 1 << 18,
        num_workers: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.mix = mix
        self.batch_size, self.seed, self.buffer_rows = batch_size, seed, buffer_rows
        self.num_workers, self.drop_last, self.pin_memory = num_workers, drop_last, pin_memory
        self.rank, self.world_size = rank, world_size
        self.dim, self.max_targets = mix.dim, mix.max_targets
        self.dtype = np.dtype(mix.dtype)
        self.sources = mix_units(mix)

    def rank_units(self, epoch: int) -> list[Unit]:
        """The units this rank reads in `epoch`, in order."""
        return epoch_units(self.sources, self.seed, epoch)[self.rank :: self.world_size]

    @property
    def rows_per_epoch(self) -> int:
        """Expected rows per epoch on this rank (exact when all weights are whole numbers)."""
        return round(self.mix.epoch_rows / self.world_size)

    def __len__(self) -> int:
        rows = self.rows_per_epoch
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
        """The batches of `epoch` on this rank, from batch `start_batch` on (to resume)."""
        stream = _EpochStream(self, epoch)
        if self.num_workers == 0:
            batches: Iterator[Batch] = iter(stream)
            if self.pin_memory:
                batches = (b.pin_memory() for b in batches)
        else:
            batches = iter(
                DataLoader(
                    stream,
                    batch_size=None,
                    num_workers=self.num_workers,
                    pin_memory=self.pin_memory,
                    prefetch_factor=2,
                )
            )
        return itertools.islice(batches, start_batch, None)
