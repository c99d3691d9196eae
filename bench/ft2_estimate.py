"""What the paper's FT2 recipe would take on this machine's GPU, from the other benchmarks.

FT2 (reference section 6): 11,897 target nouns, chunks of ceil(11,897 x 50 / 512) = 1,162
batches of 512, 899 chunks in 18 epochs, so 899 x 1,162 x 512 / 18 = 29.7M samples per epoch.
The estimate is

- embedding: one text per sample of an epoch (the prompt multisets and captions are embedded
  once, then re-used by every epoch), at the embed_texts job's rate for ViT-B-16-SigLIP M1 and
  M3 prompts (their mean, bench/embeddings.py), on one GPU;
- training: 18 epochs at the training loop's rate for the paper's decoder at the paper's batch,
  float32 with TF32 and with bfloat16 autocast (bench/train.py).

The paper reports under 1.5 days for FT2 on one RTX A6000, and text caching at about 3.45k
texts/s for SigLIP B/16.
"""

from __future__ import annotations

import math
from typing import Any

NEEDS = ("train", "embeddings")

FT2_NOUNS = 11_897
FT2_CHUNKS = 899
EPOCHS = 18
BATCH = 512
CHUNK_SCALE = 50


def ft2_samples_per_epoch() -> int:
    """Samples per epoch implied by the reference's FT2 chunk count."""
    chunk_batches = math.ceil(FT2_NOUNS * CHUNK_SCALE / BATCH)
    return FT2_CHUNKS * chunk_batches * BATCH // EPOCHS


def run(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    train, embeddings = results["train"], results["embeddings"]
    if "gpu_paper_tf32_loop_samples_per_s" not in train:
        return {"gpu": train.get("gpu", "none"), "estimate": "needs the GPU measurements"}
    epoch = ft2_samples_per_epoch()
    embed_rate = (
        embeddings["gpu_siglip_b16_m1_job_texts_per_s"]
        + embeddings["gpu_siglip_b16_m3_job_texts_per_s"]
    ) / 2
    embed_h = epoch / embed_rate / 3600
    out: dict[str, Any] = {
        "gpu": train["gpu"],
        "ft2_samples_per_epoch": epoch,
        "ft2_texts_embedded": epoch,
        "siglip_b16_job_texts_per_s": round(embed_rate),
        "ft2_embedding_hours": round(embed_h, 2),
    }
    for variant in ("tf32", "bf16"):
        rate = train[f"gpu_paper_{variant}_loop_samples_per_s"]
        train_h = EPOCHS * epoch / rate / 3600
        out[f"ft2_training_{variant}_hours"] = round(train_h, 2)
        out[f"ft2_total_{variant}_hours"] = round(embed_h + train_h, 2)
    return out
