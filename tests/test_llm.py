"""novic.llm against the fault-injecting OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from llm_fault_server import FaultServer

from novic.llm import (
    BudgetExceeded,
    LLMClient,
    LLMError,
    ReplyCache,
    api_key_from_env,
    backoff_delay,
    display_url,
    llm_identity,
    request_key,
    retry_after_seconds,
    share,
)
from novic.llm_server import free_port, process_alive
from novic.settings import LLMSettings, RequestSettings

SETTINGS = LLMSettings(backend="openai-compatible", model="fake", base_url="http://x/v1", seed=1)
FAST = dict(concurrency=2, timeout=1.0, max_retries=3, backoff_base=0.01, backoff_max=5.0)


@pytest.fixture
def server():
    s = FaultServer().start()
    yield s
    s.stop()


def messages(noun: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f'Generate a list of 3 captions with "{noun}"'}]


def run(cache_dir, server, prompts, policy=None, key="sk-test-secret-0123456789", sleeps=None):
    """Send (noun, call) requests concurrently; return (replies, client)."""

    async def main():
        client = LLMClient(SETTINGS, policy or RequestSettings(**FAST), cache, server.base_url, key)
        if sleeps is not None:

            async def record(delay):
                sleeps.append(delay)

            client._sleep = record
        try:
            replies = await asyncio.gather(
                *(client.complete(messages(n), c, {"noun": n}) for n, c in prompts)
            )
            return replies, client
        finally:
            await client.aclose()

    cache = ReplyCache(cache_dir, [0])
    try:
        return asyncio.run(main())
    finally:
        cache.close()


def test_reply_is_parsed_and_cached(tmp_path, server):
    replies, _ = run(tmp_path / "cache", server, [("dog", 0)])
    assert "1. " in replies[0].content and replies[0].finish_reason == "stop"
    assert (replies[0].prompt_tokens, replies[0].completion_tokens) == (50, 100)
    # the same request again: answered from the cache, the server sees nothing new
    replies2, client2 = run(tmp_path / "cache", server, [("dog", 0)])
    assert len(server.requests) == 1
    assert replies2[0].cached and replies2[0].content == replies[0].content
    assert client2.usage.cached == 1 and client2.usage.sent == 0
    # a different call index is a different request
    run(tmp_path / "cache", server, [("dog", 1)])
    assert len(server.requests) == 2
    body = server.requests[0]["body"]
    assert body["model"] == "fake" and body["temperature"] == 0.8 and "seed" in body
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-test-secret-0123456789"


def test_retries_on_429_500_timeout_and_reset(tmp_path):
    server = FaultServer(retry_after="0.7", slow_seconds=2.5).start()
    try:
        server.faults.extend(["429", "500", "slow", "reset"])
        sleeps: list[float] = []
        policy = RequestSettings(**{**FAST, "max_retries": 4})
        replies, client = run(tmp_path / "cache", server, [("cat", 0)], policy, sleeps=sleeps)
    finally:
        server.stop()
    assert replies[0] is not None and "cat" in replies[0].content
    assert len(server.requests) == 5
    u = client.usage
    assert (u.sent, u.retries, u.answered) == (5, 4, 1)
    assert u.errors == {"http_429": 1, "http_500": 1, "timeout": 1, "connection": 1}
    assert sleeps[0] == pytest.approx(0.7)  # Retry-After honoured
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps[1:], 1))  # jittered backoff
    assert client.stop_reason is None


def test_retries_exhausted_stops_with_message(tmp_path, server):
    server.faults.extend(["500"] * 10)
    replies, client = run(tmp_path / "cache", server, [("cat", 0)])
    assert replies == [None]
    assert len(server.requests) == 4  # 1 + max_retries
    with pytest.raises(LLMError, match=r"failed 4 times .*http_500.*re-run to continue"):
        client.raise_if_stopped()


def test_malformed_body_retried_then_skipped(tmp_path, server):
    server.faults.extend(["malformed"])
    replies, client = run(tmp_path / "cache", server, [("cat", 0)])
    assert replies[0].finish_reason == "stop" and client.usage.errors == {"malformed": 1}
    server.faults.extend(["malformed"] * 10)
    replies, client = run(tmp_path / "cache", server, [("cat", 1)])
    assert replies[0].finish_reason == "malformed" and replies[0].content == ""
    assert client.stop_reason is None  # skipped, not a crash


def test_unretryable_error_hides_key(tmp_path, server):
    key = "sk-very-secret-key-42"

    async def fake_401(*args, **kwargs):
        import httpx2
        import openai

        request = httpx2.Request("POST", server.base_url)
        response = httpx2.Response(401, request=request, json={"error": {"message": key}})
        raise openai.AuthenticationError(
            f"Incorrect API key provided: {key}", response=response, body=None
        )

    async def main():
        cache = ReplyCache(tmp_path / "cache", [0])
        client = LLMClient(SETTINGS, RequestSettings(**FAST), cache, server.base_url, key)
        client._client.chat.completions.create = fake_401
        reply = await client.complete(messages("cat"), 0)
        await client.aclose()
        return reply, client

    reply, client = asyncio.run(main())
    assert reply is None and client.usage.sent == 1
    with pytest.raises(LLMError) as info:
        client.raise_if_stopped()
    assert "http_401" in str(info.value) and key not in str(info.value)


def test_request_cap_counts_earlier_runs(tmp_path, server):
    cache = tmp_path / "cache"
    run(cache, server, [("a", 0), ("b", 0)])
    policy = RequestSettings(**{**FAST, "max_requests": 4})
    replies, client = run(cache, server, [("a", 0), ("c", 0), ("d", 0), ("e", 0), ("f", 0)], policy)
    assert sum(r is not None for r in replies) == 3  # a (cached), then 2 new ones
    assert len(server.requests) == 4
    with pytest.raises(BudgetExceeded, match="request cap reached: 4 requests"):
        client.raise_if_stopped()
    # raising the cap continues; nothing answered before is sent again
    policy = RequestSettings(**{**FAST, "max_requests": 10})
    replies, client = run(cache, server, [("a", 0), ("c", 0), ("d", 0), ("e", 0), ("f", 0)], policy)
    assert all(replies) and client.stop_reason is None
    keys = server.keys()
    assert len(keys) == len(set(keys)) == 6  # a to f, each sent once


def test_token_cap(tmp_path, server):
    policy = RequestSettings(**{**FAST, "concurrency": 1, "max_tokens": 300})
    replies, client = run(tmp_path / "cache", server, [(str(i), 0) for i in range(5)], policy)
    assert sum(r is not None for r in replies) == 2  # 150 tokens each
    with pytest.raises(BudgetExceeded, match="token cap reached: 300 tokens"):
        client.raise_if_stopped()


def entry(key: str, noun: int = 1) -> dict:
    return {
        "key": key,
        "meta": {"noun_id": noun},
        "reply": {"content": "x", "finish_reason": "stop"},
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }


def test_cache_skips_a_line_cut_by_a_kill(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    path = folder / "bucket-005.jsonl"
    path.write_text(json.dumps(entry("k1")) + "\n" + '{"key": "k2", "rep')
    cache = ReplyCache(folder, [5])
    assert list(cache.entries) == ["k1"] and cache.paid() == (1, 3)
    cache.put(entry("k3"), 5)  # the cut line is ended first, then skipped by readers
    cache.close()
    assert path.read_text().splitlines()[1] == '{"key": "k2", "rep'
    again = ReplyCache(folder, [5])
    assert list(again.entries) == ["k1", "k3"]


def test_cache_is_shared_between_jobs(tmp_path):
    """A second job sees what the first appends (on a miss); `keep` filters what is held."""
    first = ReplyCache(tmp_path / "cache", [0, 1])
    second = ReplyCache(tmp_path / "cache", [1], keep=lambda e: e["meta"]["noun_id"] == 65)
    first.put(entry("a", noun=1), 1)
    first.put(entry("b", noun=65), 1)
    assert second.get("b", 1)["key"] == "b" and second.get("a", 1) is None
    assert second.paid() == (1, 3)
    second.put(entry("b", noun=65), 1)  # a duplicate answer: the first one stays in use
    assert ReplyCache(tmp_path / "cache", [1]).paid() == (2, 6)
    first.close()
    second.close()


def test_request_key_and_helpers():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    ident = SETTINGS.identity()
    assert request_key(ident, body, 0) != request_key(ident, body, 1)
    assert request_key(ident, body, 0) != request_key({**ident, "model": "n"}, body, 0)
    assert request_key(ident, body, 0) == request_key(dict(ident), dict(body), 0)
    assert [share(10, 3, i) for i in range(3)] == [4, 3, 3]
    assert [share(2, 4, i) for i in range(4)] == [1, 1, 0, 0]
    assert share(None, 4, 0) is None
    rng = random.Random(0)
    assert all(0 <= backoff_delay(a, 1.0, 4.0, rng) <= min(4.0, 2.0**a) for a in range(8))
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_settings_and_keys_errors():
    with pytest.raises(ValueError, match=r"captions.llms.x.backend: 'gpt'"):
        LLMSettings.from_config("x", {"backend": "gpt", "model": "m"})
    with pytest.raises(ValueError, match=r"captions.llms.x: unknown key\(s\) \['colour'\]"):
        LLMSettings.from_config("x", {"backend": "local", "model": "m", "colour": 1})
    with pytest.raises(ValueError, match="base_url: required"):
        LLMSettings.from_config("x", {"backend": "openai-compatible", "model": "m"})
    openai = LLMSettings("openai", "gpt")
    assert api_key_from_env(openai, {"OPENAI_API_KEY": "sk-1"}) == "sk-1"
    with pytest.raises(LLMError, match="OPENAI_API_KEY is not set"):
        api_key_from_env(openai, {})
    compat = LLMSettings("openai-compatible", "m", base_url="http://h/v1", api_key_env="MY_KEY")
    with pytest.raises(LLMError, match="MY_KEY is not set"):
        api_key_from_env(compat, {})
    assert api_key_from_env(LLMSettings("local", "m"), {}) == "no-key"


# ---------------------------------------------------------------------------- several processes

GENERATE_CHILD = """
import json, os, sys, time
from pathlib import Path
from novic.captions import run_generate
a = json.loads(sys.argv[1])
Path(a["ready"]).write_text(str(os.getpid()))
while not Path(a["go"]).exists():
    time.sleep(0.005)
run_generate(
    a["vocab"], a["replies"], a["stats"], a["cache"], a["params"], a["requests"], a["shard"]
)
"""
# A stand-in for Snakemake: starts the job given as its arguments, directly or through a shell
# that stays between them, and waits for it.
PARENT = """
import subprocess, sys
command = [sys.executable, "-c", *sys.argv[2:]]
if sys.argv[1] == "shell":
    command = ["bash", "-c", '"$@"; exit $?', "bash", *command]
subprocess.run(command)
"""
PROMPT = 'Generate a list of {count} image captions each containing "{noun}" ({number}).'


def write_vocab(path, count: int) -> None:
    from novic.dictionary import META_CONTENT, noun_row, noun_table
    from novic.io import write_parquet

    rows = (
        noun_row(i, (f"noun{i}",), (f"noun{i}s",), singulars_freq=(2,), plurals_freq=(1,),
                 frequency=float(count - i), target=f"noun{i}", pretty=f"noun{i}")
        for i in range(count)
    )  # fmt: skip
    write_parquet(noun_table(rows), path, {META_CONTENT: "v1", "novic.artifact": "vocab"})


def job_args(tmp_path, name: str, server: FaultServer, shards: int, shard: int, **requests):
    """The arguments of GENERATE_CHILD: one caption job against `server`, cache shared."""
    params = {
        "name": "fake",
        "llm": {"backend": "openai-compatible", "model": "m", "base_url": server.base_url},
        "generate": {"prompt": PROMPT, "system_prompt": "sys", "captions_per_call": 3,
                     "quota_per_freq": 3, "quota_freq_cap": 2, "max_unproductive_calls": 2},
        "shards": shards,
    }  # fmt: skip
    policy = {"concurrency": 4, "timeout": 10, "max_retries": 2, "backoff_base": 0.01}
    return {
        "vocab": str(tmp_path / "vocab.parquet"),
        "replies": str(tmp_path / name / "replies.parquet"),
        "stats": str(tmp_path / name / "stats.json"),
        "cache": str(tmp_path / "cache"),
        "params": params,
        "requests": {**policy, **requests},
        "shard": shard,
        "ready": str(tmp_path / f"{name}.ready"),
        "go": str(tmp_path / "go"),
    }


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_two_processes_never_send_the_same_request(tmp_path):
    """Two caption jobs over overlapping nouns (all 12, and the odd ones), started together
    against one cache and a slow server: every request key is sent once."""
    server = FaultServer(delay=0.2).start()
    write_vocab(tmp_path / "vocab.parquet", 12)
    jobs = []
    for name, shards, shard in (("all", 1, 0), ("odd", 2, 1)):
        args = job_args(tmp_path, name, server, shards, shard)
        child = [sys.executable, "-c", GENERATE_CHILD, json.dumps(args)]
        jobs.append(subprocess.Popen(child, stderr=subprocess.PIPE, text=True))
    try:
        wait_for(
            lambda: all((tmp_path / f"{n}.ready").exists() for n in ("all", "odd")), 60, "jobs"
        )
        (tmp_path / "go").touch()
        for job in jobs:
            _, err = job.communicate(timeout=60)
            assert job.returncode == 0, err
    finally:
        for job in jobs:
            job.kill()
        server.stop()
    counts = Counter(server.keys())
    twice = sum(1 for c in counts.values() if c > 1)
    print(f"concurrent jobs: {len(counts)} request keys, {twice} sent more than once")
    assert len(counts) > 30 and twice == 0
    waited = sum(
        json.loads((tmp_path / n / "stats.json").read_text())["usage"]["waited"]
        for n in ("all", "odd")
    )
    assert waited > 0  # one job waited for replies that the other was receiving
    # the shared nouns got the same replies in both jobs
    every = pq.read_table(tmp_path / "all" / "replies.parquet").to_pylist()
    odd = pq.read_table(tmp_path / "odd" / "replies.parquet").to_pylist()
    assert odd and odd == [r for r in every if r["noun_id"] % 2 == 1]


def test_a_job_whose_launcher_is_killed_stops_and_the_rerun_pays_nothing_twice(tmp_path):
    """The probe's `kill -9` of Snakemake: its caption job stops (after caching what it had in
    flight) instead of finishing its nouns, and the job that a re-run starts at once on the
    same shard sends nothing twice."""
    server = FaultServer(delay=0.3).start()
    write_vocab(tmp_path / "vocab.parquet", 8)
    (tmp_path / "go").touch()
    first = job_args(tmp_path, "first", server, 1, 0, concurrency=2)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, "direct", GENERATE_CHILD, json.dumps(first)]
    )
    rerun = None
    try:
        wait_for(lambda: len(server.answered) >= 6, 60, "the first answers")
        orphan = int(Path(first["ready"]).read_text())
        parent.kill()
        parent.wait()
        second = job_args(tmp_path, "second", server, 1, 0, concurrency=2)
        child = [sys.executable, "-c", GENERATE_CHILD, json.dumps(second)]
        rerun = subprocess.Popen(child, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: not process_alive(orphan), 30, "the orphaned job to stop")
        assert not Path(first["replies"]).exists()  # it stopped early, and failed
        sent_by_orphan = len(server.keys())
        _, err = rerun.communicate(timeout=60)
        assert rerun.returncode == 0, err
    finally:
        for process in (parent, rerun):
            if process is not None:
                process.kill()
        server.stop()
    counts = Counter(server.keys())
    twice = {k for k, c in counts.items() if c > 1}
    paid = sum(c - 1 for c in Counter(server.answered).values())
    print(f"orphan: {len(counts)} request keys, {len(twice)} sent twice, {paid} paid twice")
    # the orphan finished (and cached) what it had in flight; the re-run waited for those
    assert not twice and paid == 0
    assert len(counts) > sent_by_orphan  # the re-run did the rest


@pytest.mark.parametrize("how", ["direct", "shell"])
def test_exit_with_parent(tmp_path, how):
    """A process in exit_with_parent() ends soon after a SIGKILL of its parent (a second or two,
    10 s allowed for a busy machine), also with a shell between them; not while the parent
    lives."""
    child = "import os, time\nfrom novic.llm_server import exit_with_parent\n"
    child += "with exit_with_parent(interval=0.1):\n    print(os.getpid(), flush=True)\n"
    child += "    time.sleep(60)\n"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, how, child], stdout=subprocess.PIPE, text=True
    )
    try:
        pid = int(parent.stdout.readline())
        time.sleep(0.5)
        assert process_alive(pid) and parent.poll() is None
        parent.kill()
        parent.wait()
        wait_for(lambda: not process_alive(pid), 10, "the child to stop")
    finally:
        parent.kill()
        parent.stdout.close()


def claim_record(path, pid: int, host: str, expires: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "start": None, "expires": expires}))


def test_claims_of_live_processes_hold_and_dead_ones_are_taken_over(tmp_path):
    cache = ReplyCache(tmp_path / "cache", [3])
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    host, later = socket.gethostname(), time.time() + 600
    try:
        for key, pid, on, expires, state in [
            ("k-dead", dead.pid, host, later, "mine"),  # pid gone: taken over
            ("k-live", live.pid, host, later, "busy"),
            ("k-expired", live.pid, host, time.time() - 1, "mine"),  # lease over
            ("k-remote", 1, "another-host", later, "busy"),  # its pid cannot be checked
            ("k-remote-expired", 1, "another-host", time.time() - 1, "mine"),
        ]:
            claim_record(cache.claim_path(key), pid, on, expires)
            assert cache.claim(key, 3, lease=60)[0] == state, key
        record = json.loads(cache.claim_path("k-dead").read_text())
        assert record["pid"] == os.getpid() and record["host"] == host
        assert cache.claim("k-dead", 3, lease=60)[0] == "busy"  # a coroutine of this process
        cache.put(entry("k-dead"), 3)
        cache.release("k-dead")
        assert not cache.claim_path("k-dead").exists()
        assert cache.claim("k-dead", 3, lease=60) == ("answered", cache.entries["k-dead"])
        cache.close()  # releases the claims still held
        assert not cache.claim_path("k-expired").exists()
        assert cache.claim_path("k-live").exists()  # not ours
    finally:
        live.kill()
        live.wait()


def test_a_live_claim_is_waited_for_and_a_dead_one_sent(tmp_path, server):
    """complete() sends nothing while another process holds the claim, returns the reply that
    process appends; a claim left by a dead process is taken over and sent."""
    live = subprocess.Popen(["sleep", "30"])
    dead = subprocess.Popen(["true"])
    dead.wait()

    async def main():
        cache = ReplyCache(tmp_path / "cache", [0])
        client = LLMClient(SETTINGS, RequestSettings(**FAST), cache, server.base_url, "k")
        waiting, stale = client.key(messages("cat"), 0), client.key(messages("dog"), 0)
        claim_record(cache.claim_path(waiting), live.pid, socket.gethostname(), time.time() + 60)
        claim_record(cache.claim_path(stale), dead.pid, socket.gethostname(), time.time() + 60)
        task = asyncio.ensure_future(client.complete(messages("cat"), 0))
        await asyncio.sleep(0.3)
        assert not task.done() and server.requests == []
        other = ReplyCache(tmp_path / "cache", [0])  # the owner's reply arrives
        other.put({**entry(waiting), "reply": {"content": "1. a cat", "finish_reason": "stop"}}, 0)
        other.close()
        reply = await asyncio.wait_for(task, 5)
        sent = await client.complete(messages("dog"), 0)
        await client.aclose()
        cache.close()
        return reply, sent, client

    try:
        reply, sent, client = asyncio.run(main())
    finally:
        live.kill()
        live.wait()
    assert reply.cached and reply.content == "1. a cat"
    assert sent is not None and not sent.cached and len(server.requests) == 1
    assert (client.usage.cached, client.usage.waited, client.usage.sent) == (1, 1, 1)


# ---------------------------------------------------------------------------- endpoints


def test_a_trickling_reply_hits_the_request_deadline(tmp_path):
    """One byte every 0.3 s never trips the 1 s read timeout; the whole-request deadline does,
    and the request is retried like any timeout."""
    server = FaultServer(trickle_seconds=0.3).start()
    server.faults.append("trickle")
    start = time.monotonic()
    try:
        replies, client = run(tmp_path / "cache", server, [("cat", 0)])
    finally:
        server.stop()
    assert replies[0] is not None and "cat" in replies[0].content
    assert client.usage.errors == {"timeout": 1} and len(server.requests) == 2
    assert time.monotonic() - start < 5


def test_a_server_that_is_down_is_named_but_not_the_key(tmp_path):
    port = free_port()
    down = SimpleNamespace(base_url=f"http://127.0.0.1:{port}/v1")
    key = "sk-down-secret-0123456789"
    replies, client = run(tmp_path / "cache", down, [("cat", 0)], key=key)
    assert replies == [None]
    with pytest.raises(LLMError) as info:
        client.raise_if_stopped()
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/v1" in message and "connection" in message
    assert key not in message


def test_the_openai_endpoint_is_part_of_the_request_identity(tmp_path, monkeypatch):
    """Replies of another OPENAI_BASE_URL are not replayed; the official endpoint keeps the
    keys it always had; the local backend's identity has no (random) URL."""
    gpt = LLMSettings("openai", "gpt")
    legacy = {**gpt.identity(), "seed": gpt.seed}

    def key_with(url: str | None) -> str:
        if url is None:
            monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        else:
            monkeypatch.setenv("OPENAI_BASE_URL", url)
        cache = ReplyCache(tmp_path / "cache", [0])
        client = LLMClient(gpt, RequestSettings(**FAST), cache, None, "sk-x")
        cache.close()
        return client.key(messages("cat"), 0)

    body = {"model": "gpt", "messages": messages("cat")}
    before = request_key(
        legacy, {**body, "temperature": gpt.temperature, "max_tokens": gpt.max_tokens}, 0
    )
    assert key_with(None) == key_with("https://api.openai.com/v1/") == before
    assert key_with("http://proxy:8000/v1") not in (before, key_with("http://other:8000/v1"))
    local = LLMSettings("local", "smol")
    assert llm_identity(local, "http://127.0.0.1:41234/v1") == local.identity()
    compat = LLMSettings("openai-compatible", "m", base_url="http://h/v1/")
    assert llm_identity(compat, "http://h/v1") == {**compat.identity()}
    assert display_url("https://user:pw@h:8/v1?api-key=s#x") == "https://h:8/v1"
