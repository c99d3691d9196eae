"""LLM captions with the embedded LLM: captions/s, valid-caption yield, and the pipeline's overhead.

Measured in the same run, on the same prompts:
- pipeline: run_generate with the local backend (llama.cpp's server on 127.0.0.1, the openai
  client, the reply cache with an fsync per reply), then run_filter (the paper's settings:
  its prompt, 10 captions per call, temperature 0.8; quotas small to bound the time);
- raw: the same requests (messages, seed, max_tokens, read back from the reply cache) sent to
  llama_cpp.Llama.create_chat_completion in this process, with the same number of threads.
`overhead` = pipeline seconds per completion token / raw seconds per completion token
(1.0 = the server, client and cache cost nothing). Yield = valid captions / numbered lines.
The machine's load average is recorded: other processes on the 2 cores slow both sides alike.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from novic.captions import reply_cache_dir, run_filter, run_generate
from novic.dictionary import META_CONTENT, noun_row, noun_table
from novic.io import write_parquet
from novic.llm_server import default_gguf
from novic.schema import defaults

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    ("dog", "dogs"),
    ("car", "cars"),
    ("apple", "apples"),
    ("chair", "chairs"),
    ("bicycle", "bicycles"),
    ("cup", "cups"),
]
THREADS = 2
MAX_TOKENS = 400


def _vocab(path: Path) -> None:
    table = noun_table(noun_row(i, [s], [p]) for i, (s, p) in enumerate(WORDS, 1))
    write_parquet(table, path, {META_CONTENT: "bench"})


def _paper_generate() -> dict[str, Any]:
    """captions.generate's defaults (the paper's prompt), with a quota of one call per form."""
    generate = defaults("captions.generate")
    generate.update(quota_per_freq=10, quota_freq_cap=1, max_unproductive_calls=1)
    return generate


def _raw(cache: Path) -> tuple[float, int]:
    """Replay the cached requests on llama.cpp in-process: (seconds, completion tokens)."""
    from llama_cpp import Llama

    llm = Llama(
        str(default_gguf()), n_ctx=2048, n_threads=THREADS, n_threads_batch=THREADS, verbose=False
    )
    lines = [
        line for path in sorted(cache.glob("*.jsonl")) for line in path.read_text().splitlines()
    ]
    requests = [json.loads(line)["request"] for line in lines]
    start = time.perf_counter()
    tokens = 0
    for r in requests:
        out = llm.create_chat_completion(
            r["messages"],
            temperature=r["temperature"],
            max_tokens=r["max_tokens"],
            seed=r.get("seed"),
        )
        tokens += out["usage"]["completion_tokens"]
    return time.perf_counter() - start, tokens


def run() -> dict[str, Any]:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab = tmp / "ft0.parquet"
        _vocab(vocab)
        generate = _paper_generate()
        params = {
            "name": "smollm2",
            "shards": 1,
            "generate": generate,
            "llm": {
                "backend": "local",
                "model": "smollm2",
                "temperature": 0.8,
                "max_tokens": MAX_TOKENS,
                "seed": 0,
            },
        }
        replies = tmp / "smollm2" / "ft0" / "replies" / "shard-000.parquet"
        stats_path = replies.with_suffix(".stats.json")
        cache = reply_cache_dir(replies)
        gen = run_generate(
            vocab,
            replies,
            stats_path,
            cache,
            params,
            {"concurrency": 2, "timeout": 600},
            0,
            threads=THREADS,
            server_log=tmp / "server.log",
        )
        filt = run_filter(
            vocab,
            [replies],
            [stats_path],
            tmp / "captions.parquet",
            tmp / "captions.stats.json",
            {"generate": generate, "filter": {"min_length": 10}},
        )
        raw_s, raw_tokens = _raw(cache)
    tokens = gen["completion_tokens"]
    pipeline_s = gen["requests_s"]
    return {
        "nouns": len(WORDS),
        "calls": gen["calls"],
        "completion_tokens": tokens,
        "captions": filt["captions"],
        "numbered_lines": filt["numbered_lines"],
        "valid_yield_per_line": filt["yield_per_line"],
        "captions_per_call": filt["captions_per_reply"],
        "captions_per_s": round(filt["captions"] / pipeline_s, 3),
        "captions_per_s_with_server_start": round(filt["captions"] / gen["elapsed_s"], 3),
        "pipeline_tokens_per_s": round(tokens / pipeline_s, 1),
        "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
        "overhead": round((pipeline_s / tokens) / (raw_s / raw_tokens), 3),
        "server_start_s": round(gen["elapsed_s"] - pipeline_s, 2),
        "threads": THREADS,
        "load_average_1m": round(load, 2),
    }
