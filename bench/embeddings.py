"""Text embedding: the stage's rate against a bare `model.encode_text` loop at full context.

Texts are short prompts of the paper's kind, made offline from open_clip's ImageNet class names
and CLIP's 80 templates: M1-like ("a bad photo of a goldfish.") and M3-like (three nouns joined
by "and"). For each architecture (the project's tiny CLIP and ViT-B-32, random weights: speed
does not depend on them) and each kind of text, in the same process and on the same texts:

- raw: tokenize, then `model.encode_text` on batches at the full 77-token context, normalise;
- stage: `Embedder.encode_texts` (same tokenizer, length-sorted batches cut to their longest
  text);
- shard (tiny only): the whole `embed_shard` job body, Parquet in and out, shuffled;
- tokenize: the tokenizer alone (open_clip's Python BPE), which bounds the tiny model's rate.

Ratios are times raw / stage; the goal is >= 3x on short prompts.

On a GPU (where CUDA is available), for ViT-B-32 and ViT-B-16-SigLIP at random weights under
the stage's float16 autocast, on GPU_TEXTS prompts of each kind:

- bare: `model.encode_text` on pre-tokenized batches of GPU_BATCH at full context, normalised
  and copied back (the raw GPU operation, no tokenizer);
- encode: `Embedder.encode_tokens` on the same tokens (length-sorted, cut where the tower
  allows);
- job: the whole `embed_shard` job body as rule embed_texts runs it on a GPU node (Parquet in
  and out, GPU_TOKENIZERS processes tokenizing ahead of the GPU).

SigLIP's tokenizer comes from the Hugging Face hub; offline, a stand-in with its vocabulary
size and 64-token context (CLIP's BPE ids modulo 32,000) gives the tower the same work.

On the CPU torch runs on one thread: on a shared 2-core machine its thread pool makes timings
erratic (measured: 2 threads were up to 10x slower than 1 under load). The equality of the
truncated and full-context embeddings is a test (tests/test_embedders.py), not measured here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TINY = {"texts": 4096, "batch": 256}
VITB32 = {"texts": 192, "batch": 64}  # about 4 texts/s at full context on a loaded 2-core CPU


def prompts(count: int, nouns_per_text: int, seed: int = 0) -> list[str]:
    """`count` distinct CLIP-style prompts with 1 to 3 ImageNet class names."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    rng = np.random.default_rng(seed)
    out: set[str] = set()
    while len(out) < count:
        names = rng.choice(len(IMAGENET_CLASSNAMES), nouns_per_text, replace=False)
        template = OPENAI_IMAGENET_TEMPLATES[rng.integers(len(OPENAI_IMAGENET_TEMPLATES))]
        out.add(template(" and a ".join(IMAGENET_CLASSNAMES[i] for i in names)))
    return sorted(out)


def raw_rate(embedder: Any, texts: list[str], batch: int) -> float:
    """Texts/s of tokenize + model.encode_text at full context + normalise, batch by batch."""
    import torch

    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            tokens = embedder.tokenize(texts[i : i + batch])
            torch.nn.functional.normalize(embedder.model.encode_text(tokens), dim=-1).numpy()
    return len(texts) / (time.perf_counter() - start)


def stage_rate(embedder: Any, texts: list[str], batch: int) -> float:
    start = time.perf_counter()
    embedder.encode_texts(texts, batch)
    return len(texts) / (time.perf_counter() - start)


def shard_rate(embedder: Any, texts: list[str], batch: int) -> float:
    """Rows/s of a whole embed_shard call (read, shuffle, embed, write Parquet)."""
    from novic.embed import embed_shard
    from novic.textdata import TextShardWriter, text_batch

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.parquet"
        with TextShardWriter(source) as writer:
            writer.write(text_batch(texts, np.ones((len(texts), 1), dtype=np.int32)))
        start = time.perf_counter()
        embed_shard(source, Path(tmp) / "emb.parquet", embedder, "bench", "bench", batch_size=batch)
        return len(texts) / (time.perf_counter() - start)


GPU_TEXTS = 16_384
GPU_BATCH = 1024
GPU_TOKENIZERS = 8
GPU_ARCHS = {"vitb32": "ViT-B-32", "siglip_b16": "ViT-B-16-SigLIP"}


class StandInTokenizer:
    """CLIP's BPE with ids folded into another vocabulary and context (speed tests only)."""

    def __init__(self, vocab_size: int, context_length: int) -> None:
        from open_clip import SimpleTokenizer

        self.vocab_size, self.context_length = vocab_size, context_length
        self._bpe = SimpleTokenizer(context_length=context_length)

    def __call__(self, texts: list[str]) -> Any:
        return self._bpe(texts) % self.vocab_size


def gpu_embedder(arch: str, device: str = "cuda") -> Any:
    """`arch` at random weights on the GPU under float16 autocast (its own tokenizer if it can
    be had offline, else a stand-in of the same vocabulary size and context)."""
    import open_clip
    import torch

    from novic.embedders import ClipEmbedder, hub_offline, parse_spec

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(
        arch, pretrained_image=False, pretrained_text=False
    )
    try:
        with hub_offline(True):
            tokenizer = open_clip.get_tokenizer(arch)
    except Exception:  # the hub is out of reach: same shapes, same work for the tower
        text = model.text if hasattr(model, "text") else model
        tokenizer = StandInTokenizer(text.vocab_size, text.context_length)
    spec = parse_spec({"arch": arch, "random": {"seed": 0}})
    return ClipEmbedder(spec, model, tokenizer, preprocess, torch.device(device), "float16")


def gpu_rates(embedder: Any, texts: list[str]) -> dict[str, float]:
    """Texts/s of bare encode_text, encode_tokens and the whole embed_shard job on the GPU."""
    import torch

    from novic.device import synchronize
    from novic.embed import embed_shard
    from novic.textdata import TextShardWriter, text_batch

    tokens = embedder.tokenize(texts)
    rates: dict[str, float] = {}
    for _ in range(2):  # the first pass warms up the kernels
        synchronize(embedder.device)
        start = time.perf_counter()
        with torch.no_grad(), embedder._autocast():
            for i in range(0, len(texts), GPU_BATCH):
                batch = tokens[i : i + GPU_BATCH].to(embedder.device, non_blocking=True)
                emb = embedder.model.encode_text(batch).float()
                torch.nn.functional.normalize(emb, dim=-1).cpu()
        rates["bare"] = len(texts) / (time.perf_counter() - start)
        start = time.perf_counter()
        embedder.encode_tokens(tokens, GPU_BATCH)
        rates["encode"] = len(texts) / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.parquet"
        with TextShardWriter(source) as writer:
            writer.write(text_batch(texts, np.ones((len(texts), 1), dtype=np.int32)))
        start = time.perf_counter()
        embed_shard(source, Path(tmp) / "emb.parquet", embedder, "bench", "bench",
                    batch_size=GPU_BATCH, chunk_rows=8 * GPU_BATCH,
                    tokenize_workers=GPU_TOKENIZERS)  # fmt: skip
        rates["job"] = len(texts) / (time.perf_counter() - start)
    return rates


def gpu_embedding() -> dict[str, Any]:
    results: dict[str, Any] = {
        "gpu_batch_size": GPU_BATCH,
        "gpu_tokenize_processes": GPU_TOKENIZERS,
    }
    for name, arch in GPU_ARCHS.items():
        embedder = gpu_embedder(arch)
        results[f"gpu_{name}_tokenizer"] = type(embedder.tokenizer).__name__
        for kind, nouns in (("m1", 1), ("m3", 3)):
            rates = gpu_rates(embedder, prompts(GPU_TEXTS, nouns, seed=1))
            label = f"gpu_{name}_{kind}"
            results[f"{label}_bare_texts_per_s"] = round(rates["bare"])
            results[f"{label}_encode_texts_per_s"] = round(rates["encode"])
            results[f"{label}_job_texts_per_s"] = round(rates["job"])
            results[f"{label}_encode_vs_bare"] = round(rates["encode"] / rates["bare"], 2)
            results[f"{label}_job_vs_bare"] = round(rates["job"] / rates["bare"], 2)
    return results


def run() -> dict[str, Any]:
    import bench

    results: dict[str, Any] = {"gpu": bench.gpu() or bench.no_gpu_reason()}
    if bench.wants("cpu"):
        results.update(cpu_embedding())
    if bench.gpu():
        results.update(gpu_embedding())
    return results


def cpu_embedding() -> dict[str, Any]:
    import torch

    from novic.embedders import load_embedder

    torch.set_num_threads(1)
    results: dict[str, Any] = {"torch_threads": 1}
    specs = {
        "tiny": ({"tiny": {"seed": 0}}, TINY),
        "vitb32": ({"arch": "ViT-B-32", "random": {"seed": 0}}, VITB32),
    }
    for name, (spec, size) in specs.items():
        embedder = load_embedder(spec)
        batch = size["batch"]
        results[f"{name}_batch_size"] = batch
        for kind, nouns in (("m1", 1), ("m3", 3)):
            texts = prompts(size["texts"], nouns)
            start = time.perf_counter()
            lengths = embedder.token_lengths(embedder.tokenize(texts)).float()
            tokenize = len(texts) / (time.perf_counter() - start)
            embedder.encode_texts(texts[:batch], batch)  # warm-up
            raw, stage = raw_rate(embedder, texts, batch), stage_rate(embedder, texts, batch)
            results[f"{name}_{kind}_mean_tokens"] = round(float(lengths.mean()), 1)
            results[f"{name}_{kind}_tokenize_texts_per_s"] = round(tokenize, 1)
            results[f"{name}_{kind}_raw_texts_per_s"] = round(raw, 1)
            results[f"{name}_{kind}_stage_texts_per_s"] = round(stage, 1)
            results[f"{name}_{kind}_speedup"] = round(stage / raw, 2)
            if name == "tiny":
                shard = shard_rate(embedder, texts, batch)
                results[f"{name}_{kind}_shard_rows_per_s"] = round(shard, 1)
                results[f"{name}_{kind}_shard_speedup"] = round(shard / raw, 2)
    return results
