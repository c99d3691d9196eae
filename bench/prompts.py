"""Prompt multiset generation: rows/s and peak memory, extrapolated to the paper's scale.

A synthetic vocabulary with the paper dictionary's statistics per noun (about 1.5 singular
variants of multiplicity 1.69 and 0.6 plural variants of multiplicity 1.35 per noun) is
generated at the quickstart scale and at 4x and 16x that scale. For each, one M3 (the slowest m)
is generated in a child process, whose peak RSS is measured; equal peaks at the larger scales
show that memory does not grow with the data (until every shard's row-group buffer is full it
grows a little). The raw operation measured in the same run: pyarrow writing
the same rows (already in memory) to Parquet with the same settings. The paper's FT0 sizes:
M1 = 13.39M rows, M1..M3 = 40.2M rows. Generation must not be the slow stage: its rate is
compared with text embedding (ViT-B-32 encode_text, measured here when open_clip is installed,
and the reference's GPU caching rate).
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
import pyarrow as pa
import pyarrow.parquet as pq

from novic.dictionary import META_CONTENT, META_THRESHOLD, noun_row, noun_table
from novic.io import write_parquet
from novic.prompts import make_prompts

TEMPLATES = Path(__file__).resolve().parents[1] / "resources" / "prompt_templates.tsv"
PAPER_M1_ROWS = 13_390_000
PAPER_M123_ROWS = 40_200_000
QUICKSTART_NOUNS = 2_000
SHARDS = 16
M = 3
# The reference's text-embedding rate (SigLIP B/16 caching on an RTX A6000, novic.md section 6).
# The CPU rate is measured in the same run when open_clip is installed.
EMBED_GPU_TEXTS_PER_S = 3450
EMBED_TEXTS = 64


def synthetic_vocab(path: Path, nouns: int, seed: int = 0) -> None:
    """A noun table of `nouns` random words with the paper dictionary's variant statistics."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    rows = []
    for i in range(1, nouns + 1):
        word = "".join(rng.choice(letters, rng.integers(4, 12)))
        if rng.random() < 0.3:
            word += " " + "".join(rng.choice(letters, rng.integers(3, 9)))
        n_sing = 1 + (rng.random() < 0.5)
        n_plur = int(rng.random() < 0.6)
        singulars = [word] + [word + "e"] * (n_sing - 1)
        plurals = [word + "s"] * n_plur
        rows.append(
            noun_row(
                i,
                singulars,
                plurals,
                singulars_freq=[1 + int(rng.random() < 0.69) for _ in singulars],
                plurals_freq=[1 + int(rng.random() < 0.35) for _ in plurals],
                frequency=1e-6,
            )
        )
    table = noun_table(rows)
    write_parquet(table, path, {META_CONTENT: f"synthetic-{nouns}-{seed}", META_THRESHOLD: "0"})


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from a forking parent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_generate(vocab: str, out: str, m: str, shards: str) -> None:
    """In a fresh process: generate one Mm, print rows, seconds and peak RSS as JSON."""
    settings = {
        "collections": ["imagenet", "cifar"],
        "freq": 1,
        "seed": 0,
        "heldout": [],
        "heldout_rows": 0,
    }
    paths = [f"{out}/part-{k:04d}.parquet" for k in range(int(shards))]
    start = time.perf_counter()
    stats = make_prompts(vocab, TEMPLATES, paths, f"{out}/heldout.parquet", int(m), settings)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": stats["rows"], "seconds": seconds, "peak_rss_mb": peak_rss_mb()}))


def child_baseline() -> None:
    """In a fresh process: peak RSS after the imports only."""
    print(peak_rss_mb())


def _child(function: str, *args: object) -> str:
    code = f"import sys; from bench.prompts import {function}; {function}(*sys.argv[1:])"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    return done.stdout.strip().splitlines()[-1]


def embed_texts_per_s(texts: list[str]) -> float | None:
    """ViT-B-32 (random weights, fp32) encode_text rate on this machine; None without open_clip."""
    try:
        import open_clip
        import torch
    except ImportError:
        return None
    model, _, _ = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    model.eval()
    with torch.inference_mode():
        model.encode_text(tokenizer(texts[:8]))  # warm-up
        start = time.perf_counter()
        for i in range(0, len(texts), 32):
            model.encode_text(tokenizer(texts[i : i + 32]))
        return len(texts) / (time.perf_counter() - start)


def _raw_write_seconds(shards: list[Path], out: Path) -> float:
    """pyarrow writing the same rows from memory: the floor for any generator."""
    table = pa.concat_tables(pq.read_table(p).replace_schema_metadata(None) for p in shards)
    start = time.perf_counter()
    pq.write_table(table, out, compression="zstd", row_group_size=65_536)
    return time.perf_counter() - start


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"m": M, "shards": SHARDS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        baseline_mb = float(_child("child_baseline"))
        for label, scale in (("quickstart", 1), ("4x", 4), ("16x", 16)):
            nouns = scale * QUICKSTART_NOUNS
            vocab = root / f"vocab{nouns}.parquet"
            synthetic_vocab(vocab, nouns)
            out = root / f"m{M}_{nouns}"
            child = json.loads(_child("child_generate", vocab, out, M, SHARDS))
            raw = _raw_write_seconds(sorted(out.glob("part-*.parquet")), root / "raw.parquet")
            rate = child["rows"] / child["seconds"]
            results[f"{label}_nouns"] = nouns
            results[f"{label}_rows"] = child["rows"]
            results[f"{label}_rows_per_s"] = round(rate)
            results[f"{label}_raw_write_rows_per_s"] = round(child["rows"] / raw)
            results[f"{label}_time_vs_raw_write"] = round(child["seconds"] / raw, 2)
            results[f"{label}_peak_rss_mb"] = round(child["peak_rss_mb"], 1)
        results["import_baseline_rss_mb"] = round(baseline_mb, 1)
        rate = results["16x_rows_per_s"]
        results["paper_ft0_m1_minutes"] = round(PAPER_M1_ROWS / rate / 60, 1)
        results["paper_ft0_m1_to_m3_minutes"] = round(PAPER_M123_ROWS / rate / 60, 1)
        results["rate_vs_reference_gpu_text_embedding"] = round(rate / EMBED_GPU_TEXTS_PER_S)
        sample = pq.read_table(sorted(out.glob("part-*.parquet"))[0], columns=["text"])
        embed = embed_texts_per_s(sample.column("text").to_pylist()[:EMBED_TEXTS])
        if embed is not None:
            results["cpu_text_embedding_texts_per_s"] = round(embed, 1)
            results["rate_vs_cpu_text_embedding"] = round(rate / embed)
    return results
