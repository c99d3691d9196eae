"""Decoding latency per image: beam search against the bare model forward passes, on the CPU
and (where CUDA is available) the GPU.

The operation: the default generation config beam_k10_vnone_gp_t1_a0 (beam 10, guided by the
model's whole target vocabulary through its prefix tree), and greedy decoding, on batches of 1
and 64 unit embeddings. The raw operation is the same sequence of decoder forward passes on
inputs of the same shapes (B x K rows, 0..Cmax-1 tokens) without any search: the ratio shows
what the search itself (masks, top-k over K x V, the prefix tree) costs on top of the model.

Sizes: the quickstart decoder (2 layers x 128, 64-d tiny CLIP embeddings, FT9: ~2,900 nouns,
~2,000 compact tokens) and the paper's (6 x 512, F = 768, FT2: 11,897 nouns, V = 5,300 compact
tokens as for SigLIP B/16, Cmax 8). Token sequences are synthetic (bench/train.py); only their
number and lengths matter for speed. On a GPU: the paper's size, float32 with TF32, timed after
a CUDA synchronisation.
"""

from __future__ import annotations

import time
from typing import Any

import torch

import bench
from bench.train import synthetic_targets
from novic.decoding import NounDecoder
from novic.device import enable_tf32, synchronize
from novic.model import ObjectDecoder
from novic.settings import DecoderSettings

THREADS = 2
SIZES = {
    "quickstart": {"dim": 64, "nouns": 2_900, "vocab": 2_000, "cmax": 8,
                   "model": {"prefix_tokens": 4, "layers": 2, "hidden": 128, "heads": 4,
                             "feedforward_scale": 0.5}},
    "paper": {"dim": 768, "nouns": 11_897, "vocab": 5_300, "cmax": 8,
              "model": {"prefix_tokens": 4, "layers": 6, "hidden": 512, "heads": 8}},
}  # fmt: skip


def _time(fn: Any, repeats: int, device: torch.device) -> float:
    """Best-of-`repeats` seconds of fn() (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def bare_forwards(model: ObjectDecoder, emb: torch.Tensor, k: int, steps: int) -> None:
    """The forward passes of a beam search without the search: B rows first, then B x K rows
    with 1..steps-1 input tokens."""
    b = emb.shape[0]
    rep = emb.repeat_interleave(k, dim=0)
    with torch.no_grad():
        model(emb, torch.zeros(b, 0, dtype=torch.long, device=emb.device))
        for t in range(1, steps):
            model(rep, torch.ones(b * k, t, dtype=torch.long, device=emb.device))


def measure(label: str, size: dict[str, Any], device: torch.device) -> dict[str, Any]:
    targets = synthetic_targets(size["nouns"], size["vocab"], size["cmax"])
    cfg = DecoderSettings(
        embed_dim=size["dim"], vocab_size=size["vocab"], max_tokens=size["cmax"], **size["model"]
    )
    torch.manual_seed(0)
    model = ObjectDecoder(cfg).eval().to(device)
    out: dict[str, Any] = {}
    for batch in (1, 64):
        emb = torch.nn.functional.normalize(torch.randn(batch, size["dim"]), dim=1).to(device)
        repeats = 5 if batch == 1 or device.type == "cuda" else 2
        beam = NounDecoder(model, targets, "beam_k10_vnone_gp_t1_a0", batch_size=batch)
        greedy = NounDecoder(model, targets, "greedy_k1_vnone_gp_t1_a0", batch_size=batch)
        decoded = beam.decode_batch(emb)
        steps = int((decoded.tokens != 0).sum(-1).max()) + 1  # forward passes beam search made
        t_beam = _time(lambda b=beam, e=emb: b.decode_batch(e), repeats, device)
        t_greedy = _time(lambda g=greedy, e=emb: g.decode_batch(e), repeats, device)
        t_bare = _time(lambda e=emb, s=steps: bare_forwards(model, e, 10, s), repeats, device)
        out[f"{label}_b{batch}_beam10_ms_per_image"] = round(1000 * t_beam / batch, 2)
        out[f"{label}_b{batch}_greedy_ms_per_image"] = round(1000 * t_greedy / batch, 2)
        out[f"{label}_b{batch}_bare_forward_ms_per_image"] = round(1000 * t_bare / batch, 2)
        out[f"{label}_b{batch}_beam_vs_bare"] = round(t_beam / t_bare, 3)
    return out


def run() -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        results: dict[str, Any] = {"cpu_torch_threads": THREADS}
        if bench.wants("cpu"):
            for label, size in SIZES.items():
                results.update(measure(f"cpu_{label}", size, torch.device("cpu")))
        results["gpu"] = bench.gpu() or bench.no_gpu_reason()
        if bench.gpu():
            enable_tf32()
            results.update(measure("gpu_paper", SIZES["paper"], torch.device("cuda")))
        return results
    finally:
        torch.set_num_threads(threads)
