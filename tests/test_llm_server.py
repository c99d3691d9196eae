"""The embedded LLM: llama.cpp's OpenAI-compatible server with SmolLM2-135M on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from novic.captions import reply_cache_dir, run_filter, run_generate
from novic.dictionary import META_CONTENT, noun_row, noun_table
from novic.io import write_parquet
from novic.llm_server import ServerError, default_gguf, local_server

pytestmark = pytest.mark.slow


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_closed(port: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while port_open(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_default_model_is_bundled() -> None:
    path = default_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6


def test_server_answers_then_stops_also_on_error(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        local_server(alias="smol", threads=2, log_path=tmp_path / "server.log") as url,
    ):
        with urllib.request.urlopen(url + "/models", timeout=10) as response:
            models = json.load(response)
        assert [m["id"] for m in models["data"]] == ["smol"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        raise RuntimeError("boom")
    assert wait_closed(port), "the server outlived its block"
    assert "llama" in (tmp_path / "server.log").read_text()


def test_bad_model_path() -> None:
    message = r"GGUF file '/nonexistent/m\.gguf' does not exist"
    with pytest.raises(ServerError, match=message), local_server("/nonexistent/m.gguf"):
        pass


CHILD = """
import sys, time
from novic.llm_server import local_server
with local_server(threads=1) as url:
    print(url, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_server_stops_when_its_owner_dies(sig: signal.Signals) -> None:
    """SIGTERM runs the clean-up; after SIGKILL the kernel's parent-death signal stops it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert port_open(port)
        child.send_signal(sig)
        child.wait(30)
        assert wait_closed(port), f"the server outlived its owner ({sig.name})"
    finally:
        child.kill()


def test_local_llm_caption_yield(tmp_path: Path) -> None:
    """A small real caption run: SmolLM2 follows the paper's prompt well enough to yield."""
    words = [("dog", "dogs"), ("car", "cars"), ("apple", "apples")]
    vocab = tmp_path / "ft0.parquet"
    table = noun_table(noun_row(i, [s], [p]) for i, (s, p) in enumerate(words, 1))
    write_parquet(table, vocab, {META_CONTENT: "x"})
    from novic.config import load_schema

    schema = load_schema(Path(__file__).parents[1] / "novic/config.schema.yaml")
    caption_defaults = schema["properties"]["captions"]["properties"]
    generate = {k: v["default"] for k, v in caption_defaults["generate"]["properties"].items()}
    # one call per form: its quota (1) is met, or it was unproductive once
    generate.update(
        captions_per_call=5, quota_per_freq=1, quota_freq_cap=1, max_unproductive_calls=1
    )
    params = {
        "name": "smollm2",
        "llm": {"backend": "local", "model": "smollm2", "max_tokens": 120, "seed": 0},
        "generate": generate,
        "shards": 1,
    }
    replies = tmp_path / "smollm2" / "ft0" / "replies" / "shard-000.parquet"
    stats_path = replies.with_suffix(".stats.json")
    stats = run_generate(
        vocab,
        replies,
        stats_path,
        reply_cache_dir(replies),
        params,
        {"concurrency": 2, "timeout": 600},
        0,
        threads=2,
        server_log=tmp_path / "server.log",
    )
    assert len(words) <= stats["calls"] <= 2 * len(words)
    assert stats["usage"]["answered"] == stats["calls"]
    result = run_filter(
        vocab,
        [replies],
        [stats_path],
        tmp_path / "captions.parquet",
        tmp_path / "captions.stats.json",
        {"generate": generate, "filter": {"min_length": 10}},
    )
    # The 135M model answers with few valid captions, but not none (the bench reports yield)
    assert result["numbered_lines"] >= 6, result
    assert result["captions"] >= 2, result
    print(json.dumps({"generate": stats, "filter": result}, indent=1))
