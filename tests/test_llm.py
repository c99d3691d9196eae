"""novic.llm against the fault-injecting OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from llm_fault_server import FaultServer

from novic.llm import (
    BudgetExceeded,
    LLMClient,
    LLMError,
    ReplyCache,
    api_key_from_env,
    backoff_delay,
    request_key,
    retry_after_seconds,
    share,
)
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
