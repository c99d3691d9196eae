"""Training loader: rows/s against a bare pyarrow scan of the same shards, and peak memory.

A synthetic cache in the paper's shape (F = 768 float16 unit vectors, M = 3 targets, row groups
of 8192 rows, written like the embedding stage writes) is read in the same run by:

- raw: `pq.ParquetFile.read_row_group` over every row group, in file order (decoding only);
- loader: `EmbeddingLoader.epoch` yielding shuffled float32/int64 torch batches of 8192 rows,
  in the calling process and with 2 worker processes; overall, and steady (after the first
  batch: without worker start-up, which a real epoch of millions of rows amortises).

The goal is loader >= 0.8x raw. The rate a GPU training step consumes is the paper's: 51.74M
samples x 18 epochs in 1.5 days (the fast end of its 1.5 to 3 days), about 7.2k samples/s.
Peak memory: a fresh process streams caches of 1x, 4x and 8x the base size with the same
1 << 16-row buffer; its peak RSS should not grow with the cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

DIM = 768
SHARD_ROWS = 32_768
SHARDS = 8
BATCH = 8192
BUFFER = 1 << 16
GPU_SAMPLES_PER_S = 51.74e6 * 18 / (1.5 * 86400)


def write_cache(root: Path, shards: int, rows: int = SHARD_ROWS) -> list[Path]:
    """`shards` embedding shards of unit float16 vectors, written as the stage writes them
    (row-group checksums included, so the loader's verification is part of what is measured)."""
    from novic.shards import ROW_GROUP_ROWS, embedding_table, write_shard

    paths = []
    rng = np.random.default_rng(0)
    for k in range(shards):
        emb = rng.standard_normal((rows, DIM), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        targets = rng.integers(1, 40_000, (rows, 3), dtype=np.int32)
        weights = np.full((rows, 3), 1 / 3, dtype=np.float32)
        table = embedding_table(emb, targets, weights, "float16")
        path = root / f"part-{k:04d}.parquet"
        write_shard(path, table.schema, [table], ROW_GROUP_ROWS)
        paths.append(path)
    return paths


def make_mix(paths: list[Path], repeat: int = 1) -> Any:
    from novic.mix import Mix, MixShard, MixSource

    shards = [MixShard(p, pq.read_metadata(p).num_rows) for p in paths]
    return Mix(
        "bench", "bench", {}, "", DIM, "float16", 3, "", 0, [MixSource("m1", repeat, shards)]
    )


def raw_scan(paths: list[Path]) -> float:
    start, rows = time.perf_counter(), 0
    for path in paths:
        with pq.ParquetFile(path) as f:
            for g in range(f.num_row_groups):
                rows += f.read_row_group(g).num_rows
    return rows / (time.perf_counter() - start)


def loader_rates(mix: Any, workers: int) -> tuple[float, float]:
    """Rows/s of one epoch: overall, and after the first batch (without worker start-up and the
    first filling of the shuffle buffer, which a long epoch amortises)."""
    from novic.loader import EmbeddingLoader

    loader = EmbeddingLoader(mix, BATCH, buffer_rows=BUFFER, num_workers=workers)
    start, rows, first = time.perf_counter(), 0, None
    for batch in loader.epoch(0):
        rows += len(batch.embedding)
        if first is None:
            first, first_rows = time.perf_counter(), rows
    end = time.perf_counter()
    return rows / (end - start), (rows - first_rows) / (end - first)


PEAK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from bench.loader import BATCH, BUFFER, make_mix
from novic.loader import EmbeddingLoader

def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))

imports = peak()
mix = make_mix(sorted(Path(sys.argv[2]).glob("part-*.parquet")), int(sys.argv[3]))
rows = sum(len(b.embedding) for b in EmbeddingLoader(mix, BATCH, buffer_rows=BUFFER).epoch(0))
print(json.dumps({"rows": rows, "peak_mb": peak() / 1024, "imports_mb": imports / 1024}))
"""


def peak_rss(folder: Path, repeat: int) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-c", PEAK, str(root), str(folder), str(repeat)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"dim": DIM, "dtype": "float16", "batch": BATCH, "buffer": BUFFER}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_cache(Path(tmp), SHARDS)
        mix = make_mix(paths)
        results["cache_rows"] = SHARDS * SHARD_ROWS
        results["cache_mb_on_disk"] = round(sum(p.stat().st_size for p in paths) / 2**20, 1)
        raw_scan(paths[:1])  # warm the page cache
        raw = raw_scan(paths)
        results["raw_scan_rows_per_s"] = round(raw)
        for workers in (0, 2):
            rate, steady = loader_rates(mix, workers)
            results[f"loader_w{workers}_rows_per_s"] = round(rate)
            results[f"loader_w{workers}_vs_raw"] = round(rate / raw, 2)
            results[f"loader_w{workers}_steady_rows_per_s"] = round(steady)
            results[f"loader_w{workers}_steady_vs_raw"] = round(steady / raw, 2)
            results[f"loader_w{workers}_vs_gpu_step"] = round(rate / GPU_SAMPLES_PER_S, 1)
        results["gpu_step_samples_per_s"] = round(GPU_SAMPLES_PER_S)
        # The cache streamed 1x, 4x and 8x over (repeat weights): same buffer, growing data.
        for repeat in (1, 4, 8):
            peak = peak_rss(Path(tmp), repeat)
            results[f"peak_rss_mb_cache_x{repeat}"] = round(peak["peak_mb"], 1)
        results["rss_mb_after_imports"] = round(peak["imports_mb"], 1)
        results["buffer_mb"] = round(BUFFER * DIM * 2 / 2**20, 1)
        data_mb = SHARDS * SHARD_ROWS * DIM * 2 / 2**20
        results["cache_x8_data_mb"] = round(8 * data_mb)
        growth = results["peak_rss_mb_cache_x8"] - results["peak_rss_mb_cache_x1"]
        results["peak_growth_x1_to_x8_mb"] = round(growth, 1)
    return results
