"""Decoder training speed: the full loop against the bare step, on the CPU and on a GPU.

The full loop is novic.train.train_decoder as the pipeline runs it: the streaming loader
(novic.loader over Parquet embedding shards of an M1/M2/M3/captions mix, shuffle buffer,
reader processes), target lookup and pinning (on a thread that prepares the next batches ahead:
train.prefetch_batches at its default), noise (GaussElemUniformAngle) on the device, forward,
backward, AdamW with accumulation and clipping, metrics and checkpoints. The raw operation is
the same model's forward/backward/step on 8 batches of the same data already on the device
(bare_step_rate).
Goal: loop samples/s >= 0.9 x bare samples/s. Loop chunks and bare measurements alternate, and
each loop chunk is compared with the bare runs next to it (the first chunk, with start-up, is
left out); on the CPU the same ratio per CPU second of the training process is also reported,
which the load of other processes on a shared machine hardly changes. The quickstart size on
the CPU and TF32 on the GPU are measured again with prefetch_batches 0 (each batch prepared on
the training thread), labelled `_prefetch0`.

Sizes: the quickstart decoder (presets/quickstart.yaml) on the tiny embedder's 64-d embeddings,
and the paper's decoder (6 x 512, 8 heads, P = 4, F = 768, V = 5,300 compact tokens as for
SigLIP at FT2). On the CPU the paper size trains at a few hundred samples/s at most, so it is
measured on few batches. Where CUDA is available the paper size also runs on the GPU at the
paper's batch (512 x accum 16) with peak GPU memory, three ways: float32 with TF32 (the
paper's recipe), bfloat16 autocast (train.amp), and float32 through torch.compile
(train.compile). Torch uses THREADS threads here (tiny matrices lose time to thread hand-offs).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

import bench
from novic.device import enable_tf32
from novic.loader import EmbeddingLoader
from novic.mix import Mix, MixShard, MixSource
from novic.settings import RunSettings, TrainSettings
from novic.shards import PARQUET_OPTIONS, embedding_table
from novic.tokens import TargetTokens
from novic.train import (
    PREFETCH_BATCHES,
    bare_step_rate,
    build_model,
    flatten_targets,
    target_multiple,
    train_decoder,
)

THREADS = 1
ROW_GROUP = 8192
QUICKSTART_MODEL = {
    "prefix_tokens": 4,
    "layers": 1,
    "hidden": 128,
    "heads": 4,
    "feedforward_scale": 1.0,
}
BARE_BATCHES = 8  # batches the bare step cycles through (the mix's share of 1-3 targets)
PAPER_MODEL = {"prefix_tokens": 4, "layers": 6, "hidden": 512, "heads": 8}
NOISE = {"scheme": "GaussElemUniformAngle"}


def synthetic_targets(nouns: int, vocab: int, cmax: int, seed: int = 0) -> TargetTokens:
    """`nouns` target nouns of 1..cmax-1 random compact tokens (+ end) over `vocab` tokens."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((nouns + 1, cmax), dtype=np.int64)
    lengths = rng.integers(1, cmax, nouns)
    for i, n in enumerate(lengths, 1):
        tokens[i, :n] = rng.integers(1, vocab, n)
    tokens[1, : cmax - 1] = vocab - 1  # every token id and the full length occur
    return TargetTokens(
        ["", *(f"n{i}" for i in range(1, nouns + 1))],
        list(range(nouns + 1)),
        list(range(vocab)),
        tokens,
    )


def synthetic_mix(root: Path, dim: int, rows: int, nouns: int, dtype: str, seed: int = 0) -> Mix:
    """Embedding shards like the pipeline's: m1, m2, m3 (1-3 targets, weights 1/m) and
    captions (1 target, weight x4 in the mix), `rows` rows per m and rows/4 of captions."""
    rng = np.random.default_rng(seed)
    sources = []
    for name, m, n, weight in (
        ("m1", 1, rows, 1.0),
        ("m2", 2, rows, 1.0),
        ("m3", 3, rows, 1.0),
        ("captions", 1, rows // 4, 4.0),
    ):
        emb = rng.standard_normal((n, dim), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        targets = np.zeros((n, 3), dtype=np.int32)
        targets[:, :m] = rng.integers(1, nouns + 1, (n, m))
        weights = np.where(targets > 0, 1 / m, 0).astype(np.float32)
        path = root / f"{name}.parquet"
        table = embedding_table(emb, targets, weights, dtype)
        pq.write_table(table, path, row_group_size=ROW_GROUP, **PARQUET_OPTIONS)
        sources.append(MixSource(name, weight, [MixShard(path, n)]))
    return Mix("bench", "synthetic", {}, "", dim, dtype, 3, "", 0, sources)


def measure(
    root: Path,
    label: str,
    model: dict[str, Any],
    dim: int,
    vocab: int,
    nouns: int,
    batch_size: int,
    accum: int,
    chunk_batches: int,
    chunks: int,
    workers: int,
    device: torch.device,
    amp: bool = False,
    compile: bool = False,
    prefetch: int = PREFETCH_BATCHES,
) -> dict[str, Any]:
    """Loop and bare samples/s of one decoder size, interleaved (`amp`: bfloat16 autocast,
    `compile`: the decoder through torch.compile, in both; `prefetch`: the loop's
    prefetch_batches).

    The loop runs `chunks` chunks of `chunk_batches` batches; after each chunk but the last,
    the bare step runs `chunk_batches` steps on a copy of the model, so that every loop chunk
    (but the first, start-up) has a bare measurement taken right next to it: on a shared
    machine the load changes by the minute, and the ratio of neighbours is what is reported
    (the median over the chunks).
    """
    rows = 3 * chunks * chunk_batches * batch_size // 7 + ROW_GROUP  # all chunks in one epoch
    mix = synthetic_mix(root, dim, rows, nouns, "float16")
    targets = synthetic_targets(nouns, vocab, cmax=8)
    epoch_batches = int(mix.epoch_rows) // batch_size
    train = {
        "batch_size": batch_size,
        "accum": accum,
        "chunk_scale": chunk_batches * batch_size / nouns,
        "epochs": chunks * chunk_batches / epoch_batches + 1e-9,
        "loader_workers": workers,
        "buffer_rows": 4 * ROW_GROUP,
        "amp": amp,
    }
    settings = RunSettings.from_config({"model": model, "noise": NOISE, "train": train})
    loader = EmbeddingLoader(
        mix,
        batch_size=batch_size,
        buffer_rows=train["buffer_rows"],
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    lookup, table = torch.from_numpy(targets.lookup()), torch.from_numpy(targets.tokens)
    raw = itertools.islice(EmbeddingLoader(mix, batch_size=batch_size).epoch(0), BARE_BATCHES)
    batches = [flatten_targets(*b, lookup, table, target_multiple(device)) for b in raw]
    torch.manual_seed(0)
    bare_model = build_model(settings, targets, dim, device)
    bare: list[dict[str, float]] = []
    cpu_marks: list[tuple[float, float]] = []  # process CPU time when each chunk ends / resumes

    def between_chunks(done: int) -> None:
        end = time.process_time()
        if done < chunks:
            cfg = TrainSettings(**train)
            bare.append(bare_step_rate(bare_model, batches, cfg, chunk_batches, device, compile))
        cpu_marks.append((end, time.process_time()))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out = root / label
    summary = train_decoder(
        loader, targets, settings, out / "decoder.pt", out / "metrics.jsonl", out / "work",
        device, {"bench": label}, checkpoint_every=1 << 30, on_chunk=between_chunks,
        compile=compile, prefetch_batches=prefetch,
    )  # fmt: skip
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    loop = [m["samples_per_s"] for m in lines[1:]]
    samples = chunk_batches * batch_size
    loop_cpu = [samples / (cpu_marks[k][0] - cpu_marks[k - 1][1]) for k in range(1, chunks)]
    walls, cpus = [b["wall"] for b in bare], [b["cpu"] for b in bare]
    # loop chunk k+2 ran between bare[k] and bare[k+1] (the last chunk has only bare[k])
    ratios = [rate / float(np.mean(walls[k : k + 2])) for k, rate in enumerate(loop)]
    result: dict[str, Any] = {
        f"{label}_parameters": summary["parameters"],
        f"{label}_batch": f"{batch_size} x accum {accum}, {workers} reader processes, "
        f"{prefetch} batches prepared ahead",
        f"{label}_loop_samples_per_s": round(float(np.median(loop)), 1),
        f"{label}_bare_samples_per_s": round(float(np.median(walls)), 1),
        f"{label}_loop_vs_bare": round(float(np.median(ratios)), 3),
        f"{label}_loop_vs_bare_per_chunk": [round(r, 3) for r in ratios],
    }
    if device.type == "cpu":
        # per CPU second of the training process: robust to other processes' load
        result[f"{label}_loop_vs_bare_cpu_time"] = round(
            float(np.median(loop_cpu)) / float(np.median(cpus)), 3
        )
    if device.type == "cuda":
        result[f"{label}_peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return result


def run() -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    results: dict[str, Any] = {"cpu_torch_threads": THREADS}
    cpu = torch.device("cpu")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if bench.wants("cpu"):
                for workers, prefetch in ((0, PREFETCH_BATCHES), (0, 0), (1, PREFETCH_BATCHES)):
                    label = f"cpu_quickstart_w{workers}" + ("_prefetch0" if not prefetch else "")
                    (root / label).mkdir()
                    results.update(
                        measure(root / label, label, QUICKSTART_MODEL, dim=64, vocab=500,
                                nouns=464, batch_size=256, accum=1, chunk_batches=24, chunks=4,
                                workers=workers, device=cpu, prefetch=prefetch)
                    )  # fmt: skip
                (root / "p").mkdir()
                results.update(
                    measure(root / "p", "cpu_paper", PAPER_MODEL, dim=768, vocab=5_300,
                            nouns=11_897, batch_size=128, accum=4, chunk_batches=8, chunks=3,
                            workers=1, device=cpu)
                )  # fmt: skip
            results["gpu"] = bench.gpu() or bench.no_gpu_reason()
            if bench.gpu():
                results.update(gpu_paper(root))
    finally:
        torch.set_num_threads(threads)
    return results


GPU_VARIANTS = {  # label: (amp, compile, prefetch_batches)
    "gpu_paper_tf32": (False, False, PREFETCH_BATCHES),
    "gpu_paper_tf32_prefetch0": (False, False, 0),
    "gpu_paper_bf16": (True, False, PREFETCH_BATCHES),
    "gpu_paper_tf32_compiled": (False, True, PREFETCH_BATCHES),
}
# A comma-separated subset of the labels above (e.g. on a GPU lent for minutes: compiling the
# decoder twice takes over a minute).
VARIANTS_ENV = "NOVIC_BENCH_TRAIN_GPU_VARIANTS"


def gpu_paper(root: Path) -> dict[str, Any]:
    """The paper's decoder at the paper's batch (512 x accum 16) on the GPU: float32 with TF32
    (the paper's recipe; also with each batch prepared on the training thread), bfloat16
    autocast, and float32 through torch.compile."""
    gpu = torch.device("cuda")
    enable_tf32()
    results: dict[str, Any] = {}
    chosen = os.environ.get(VARIANTS_ENV, "").split(",") if os.environ.get(VARIANTS_ENV) else []
    unknown = sorted(set(chosen) - set(GPU_VARIANTS))
    if unknown:
        raise ValueError(f"{VARIANTS_ENV}: unknown {unknown}; known: {sorted(GPU_VARIANTS)}")
    for label, (amp, compile, prefetch) in GPU_VARIANTS.items():
        if chosen and label not in chosen:
            continue
        (root / label).mkdir()
        start = time.perf_counter()
        results.update(
            measure(root / label, label, PAPER_MODEL, dim=768, vocab=5_300, nouns=11_897,
                    batch_size=512, accum=16, chunk_batches=128, chunks=4, workers=4,
                    device=gpu, amp=amp, compile=compile, prefetch=prefetch)
        )  # fmt: skip
        results[f"{label}_seconds"] = round(time.perf_counter() - start, 1)
    return results
