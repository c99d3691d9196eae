"""Chat requests to any OpenAI-compatible backend: caching, concurrency, retries, cost caps.

Every request goes through the `openai` client (AsyncOpenAI, its own retries off). On top:

- ReplyCache: an append-only JSON-lines file, one line per answered request, flushed and
  fsynced. A request is identified by `request_key`, a hash of everything that determines it,
  so a re-run (or a run after a kill at any moment) only sends what was never answered.
- LLMClient.complete(): cache lookup, then a concurrency slot, then the caps, then the request
  with exponential backoff and full jitter on 429/5xx/timeouts/connection errors, honouring
  Retry-After. Errors that retrying cannot fix (bad key, unknown model) stop the run.
- Budget: caps on requests sent and tokens used, counted over all runs (cached replies were
  paid for too). When a cap or a fatal error is reached the client stops sending; requests in
  flight finish and are cached, then the caller raises the reason (`client.raise_if_stopped()`).
- Usage: totals (requests, retries, errors by kind, tokens) for the stats file.

API keys are read from the environment (`api_key_from_env`), never logged or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import fcntl
import json
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from novic.io import sha256_json
from novic.settings import LLMSettings, RequestSettings

log = logging.getLogger(__name__)

CACHE_BUCKETS = 64  # fixed: changing it would hide the cached replies
OPENAI_KEY_ENV = "OPENAI_API_KEY"
# Status codes worth retrying (the openai client retries the same set).
RETRY_STATUS = {408, 409, 429}


class LLMError(RuntimeError):
    """A failure that retrying will not fix, or retries exhausted: the run stops."""


class BudgetExceeded(LLMError):
    """A configured cap on requests or tokens was reached."""


class _Stopped(Exception):
    """Raised inside complete() once the client has stopped; the caller skips its work."""


def api_key_from_env(settings: LLMSettings, environ: dict[str, str] | None = None) -> str:
    """The API key for `settings`, read from the environment (a placeholder where none is used)."""
    environ = os.environ if environ is None else environ
    var = OPENAI_KEY_ENV if settings.backend == "openai" else settings.api_key_env
    if not var:
        return "no-key"  # local servers ignore it; the client insists on a value
    key = environ.get(var, "")
    if not key:
        raise LLMError(
            f"environment variable {var} is not set (needed by the {settings.backend!r} "
            "LLM backend); export it before running"
        )
    return key


def request_key(identity: dict[str, Any], body: dict[str, Any], call: int) -> str:
    """Hash of everything that determines a request; `call` tells repeated prompts apart."""
    return sha256_json({"llm": identity, "body": body, "call": call})


def request_seed(key: str, base: int | None) -> int | None:
    """A per-request sampling seed derived from the key, or None to send no seed."""
    return None if base is None else (int(key[:8], 16) + base) % (2**31)


@dataclass
class Reply:
    """What a request returned (from the server or from the cache)."""

    key: str
    content: str
    finish_reason: str  # stop, length, content_filter, ... or "malformed" for a broken body
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class ReplyCache:
    """Append-only JSON-lines files of answered requests, looked up by request_key.

    The files are the buckets of a fixed partition, `bucket-NNN.jsonl`, by a number the caller
    gives with each request (the caption stage uses noun id % CACHE_BUCKETS). Jobs that split
    the work differently, or caption sets of several vocabularies, thus share what was paid for.
    Each line is appended under an exclusive lock, flushed and fsynced as soon as its reply
    arrives; lines that other processes append are read on a lookup miss. A line cut short by a
    kill is skipped. `keep` chooses which entries to hold in memory (say, one shard's nouns).
    """

    def __init__(
        self,
        folder: str | Path,
        buckets: Iterable[int],
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.entries: dict[str, dict[str, Any]] = {}
        self._offsets: dict[int, int] = {}
        self._fds: dict[int, int] = {}
        for bucket in sorted(set(buckets)):
            self._offsets[bucket] = 0
            self._read_new(bucket)

    def path(self, bucket: int) -> Path:
        return self.folder / f"bucket-{bucket:03d}.jsonl"

    def _read_new(self, bucket: int) -> None:
        """Load the complete lines appended to a bucket since it was last read."""
        path = self.path(bucket)
        offset = self._offsets.setdefault(bucket, 0)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                entry = json.loads(line)
                key = entry["key"]
            except (ValueError, KeyError, TypeError):
                log.warning("%s: skipping an unreadable line (%d bytes)", path, len(line))
                continue
            if key not in self.entries and (self.keep is None or self.keep(entry)):
                self.entries[key] = entry  # the first reply to a request is the one used
        self._offsets[bucket] = offset + end

    def get(self, key: str, bucket: int) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if entry is None:
            self._read_new(bucket)  # another job may have answered it meanwhile
            entry = self.entries.get(key)
        return entry

    def put(self, entry: dict[str, Any], bucket: int) -> None:
        """Append one entry durably (first ending a line that a killed writer left open)."""
        fd = self._fds.get(bucket)
        if fd is None:
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
            fd = self._fds[bucket] = os.open(self.path(bucket), flags, 0o644)
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self.entries.setdefault(entry["key"], entry)

    def paid(self) -> tuple[int, int]:
        """(requests, tokens) of the entries held: every cached reply was paid for."""
        tokens = sum(
            e["usage"]["prompt_tokens"] + e["usage"]["completion_tokens"]
            for e in self.entries.values()
        )
        return len(self.entries), tokens

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


@dataclass
class Usage:
    """Counters for the stats file. `sent` counts HTTP attempts made by this run."""

    sent: int = 0
    answered: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0  # this run's new replies
    completion_tokens: int = 0
    errors: Counter = field(default_factory=Counter)
    paid_before_requests: int = 0  # what the cache held when the run started
    paid_before_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = dict(self.errors)
        out["total_requests"] = self.paid_before_requests + self.answered
        out["total_tokens"] = self.paid_before_tokens + self.prompt_tokens + self.completion_tokens
        return out


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * 2.0**attempt))


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header, if present and readable."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        with contextlib.suppress(ValueError):
            return max(float(value) / 1000.0, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0)
    return None


class LLMClient:
    """Send chat requests with caching, concurrency, retries and caps (see the module doc)."""

    def __init__(
        self,
        settings: LLMSettings,
        policy: RequestSettings,
        cache: ReplyCache,
        base_url: str | None,
        api_key: str,
        seed: int = 0,
    ) -> None:
        import openai  # imported here so that the module loads without it

        self.settings = settings
        self.policy = policy
        self.cache = cache
        self.usage = Usage()
        self.usage.paid_before_requests, self.usage.paid_before_tokens = cache.paid()
        self.stop_reason: LLMError | None = None
        self._openai = openai
        self._secret = api_key
        self._rng = random.Random(seed)
        for name in ("httpx", "httpx2", "openai"):  # one INFO line per request otherwise
            logging.getLogger(name).setLevel(logging.WARNING)
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._sleep = asyncio.sleep  # tests record the waits instead
        # base_url None lets the client use OPENAI_BASE_URL or the official endpoint.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url or None, timeout=policy.timeout, max_retries=0
        )

    async def aclose(self) -> None:
        await self._client.close()

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The request body without the per-request seed."""
        s = self.settings
        return {
            "model": s.model,
            "messages": messages,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
        }

    def key(self, messages: list[dict[str, str]], call: int) -> str:
        ident = {**self.settings.identity(), "seed": self.settings.seed}
        return request_key(ident, self.body(messages), call)

    def stop(self, reason: LLMError) -> None:
        """Send nothing more; the first reason is kept."""
        if self.stop_reason is None:
            log.error("stopping: %s", reason)
            self.stop_reason = reason

    def raise_if_stopped(self) -> None:
        if self.stop_reason is not None:
            raise self.stop_reason

    def _spent(self) -> tuple[int, int]:
        u = self.usage
        requests = u.paid_before_requests + u.sent
        tokens = u.paid_before_tokens + u.prompt_tokens + u.completion_tokens
        return requests, tokens

    def _check_budget(self) -> None:
        requests, tokens = self._spent()
        p = self.policy
        if p.max_requests is not None and requests >= p.max_requests:
            self.stop(
                BudgetExceeded(
                    f"request cap reached: {requests} requests sent for this shard (its share of "
                    f"captions.requests.max_requests is {p.max_requests}); finished replies are "
                    "cached, raise the cap and re-run to continue"
                )
            )
        elif p.max_tokens is not None and tokens >= p.max_tokens:
            self.stop(
                BudgetExceeded(
                    f"token cap reached: {tokens} tokens used by this shard (its share of "
                    f"captions.requests.max_tokens is {p.max_tokens}); finished replies are "
                    "cached, raise the cap and re-run to continue"
                )
            )

    async def complete(
        self,
        messages: list[dict[str, str]],
        call: int,
        meta: dict[str, Any] | None = None,
        bucket: int = 0,
    ) -> Reply | None:
        """The reply to `messages` (the `call`-th request with this prompt), or None if stopped.

        `meta` is stored with the cache entry (e.g. which noun and form the request was for);
        `bucket` is the cache file it belongs to.
        """
        key = self.key(messages, call)
        entry = self.cache.get(key, bucket)
        if entry is not None:
            self.usage.cached += 1
            return _reply_from_entry(entry, cached=True)
        async with self._slots:
            try:
                return await self._send(key, messages, meta or {}, bucket)
            except _Stopped:
                return None

    async def _send(
        self, key: str, messages: list[dict[str, str]], meta: dict[str, Any], bucket: int
    ) -> Reply:
        """One request with retries; the reply is cached. Raises _Stopped once stopped."""
        body = self.body(messages)
        seed = request_seed(key, self.settings.seed)
        if seed is not None:
            body["seed"] = seed
        p = self.policy
        for attempt in range(p.max_retries + 1):
            self._check_budget()
            if self.stop_reason is not None:
                raise _Stopped
            self.usage.sent += 1
            try:
                response = await self._client.chat.completions.create(
                    **body, extra_headers={"X-Novic-Request-Key": key}
                )
                reply = _reply_from_response(key, response)
                break
            except Exception as exc:  # classified; what is not known to be transient stops
                kind, retryable, wait = self._classify(exc)
                self.usage.errors[kind] += 1
                if not retryable:
                    quote = not kind.startswith(("http_401", "http_403"))  # may echo the key
                    detail = f": {_short(exc, self._secret)}" if quote else ""
                    self._stop_and_raise(
                        f"request failed and will not be retried: {kind}{detail} "
                        f"(model {self.settings.model!r})"
                    )
                if wait is not None and wait > p.backoff_max:
                    self._stop_and_raise(
                        f"server asked to retry after {wait:.0f} s, longer than "
                        f"captions.requests.backoff_max={p.backoff_max}"
                    )
                if attempt == p.max_retries:
                    if kind != "malformed":
                        self._stop_and_raise(
                            f"request failed {attempt + 1} times ({kind}: "
                            f"{_short(exc, self._secret)}); finished replies are "
                            "cached, re-run to continue"
                        )
                    # a broken body from a working server: skip this request, not the run
                    log.warning(
                        "request %s: malformed reply %d times, skipped", key[:12], attempt + 1
                    )
                    reply = Reply(key, "", "malformed", 0, 0)
                    break
                delay = backoff_delay(attempt, p.backoff_base, p.backoff_max, self._rng)
                delay = wait if wait is not None else delay
                log.info(
                    "request %s: %s, retry %d/%d in %.1f s",
                    key[:12],
                    kind,
                    attempt + 1,
                    p.max_retries,
                    delay,
                )
                self.usage.retries += 1
                await self._sleep(delay)
        if reply.finish_reason != "malformed":
            self.usage.answered += 1
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
        self.cache.put(
            {
                "key": key,
                "meta": meta,
                "request": body,
                "reply": {"content": reply.content, "finish_reason": reply.finish_reason},
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                },
                "time": round(time.time(), 3),
            },
            bucket,
        )
        return reply

    def _stop_and_raise(self, message: str) -> NoReturn:
        self.stop(LLMError(message))
        raise _Stopped

    def _classify(self, exc: BaseException) -> tuple[str, bool, float | None]:
        """(kind, retryable, Retry-After seconds) for an exception from one attempt."""
        oa = self._openai
        if isinstance(exc, oa.APITimeoutError):
            return "timeout", True, None
        if isinstance(exc, oa.APIConnectionError):
            return "connection", True, None
        if isinstance(exc, oa.APIStatusError):
            status = exc.status_code
            wait = retry_after_seconds(exc.response.headers)
            if status in RETRY_STATUS or status >= 500:
                return f"http_{status}", True, wait
            if status in (401, 403):  # the server's message may quote part of the key: drop it
                return f"http_{status} (is the API key in the environment right?)", False, None
            return f"http_{status}", False, None
        if isinstance(exc, oa.APIResponseValidationError | _Malformed | ValueError):
            return "malformed", True, None
        return type(exc).__name__, False, None


class _Malformed(ValueError):
    pass


def _reply_from_response(key: str, response: Any) -> Reply:
    """Validate a chat completion; raise _Malformed when it lacks what a reply must have."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise _Malformed("no choices in the response")
    choice = choices[0]
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None) if message is not None else None
    if content is not None and not isinstance(content, str):
        raise _Malformed("message content is not text")
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion = getattr(usage, "completion_tokens", None) if usage is not None else None
    content = content or ""
    if not isinstance(prompt, int) or not isinstance(completion, int):
        # No usage from the server: estimate (about 4 characters per token) for the caps.
        prompt, completion = 0, math.ceil(len(content) / 4)
    return Reply(
        key, content, str(getattr(choice, "finish_reason", None) or "unknown"), prompt, completion
    )


def _reply_from_entry(entry: dict[str, Any], cached: bool) -> Reply:
    return Reply(
        entry["key"],
        entry["reply"]["content"],
        entry["reply"]["finish_reason"],
        entry["usage"]["prompt_tokens"],
        entry["usage"]["completion_tokens"],
        cached,
    )


def _short(exc: BaseException, secret: str = "", limit: int = 200) -> str:
    """A one-line excerpt of an error message, with the API key (if any) blanked out."""
    text = " ".join(str(exc).split())
    if len(secret) >= 8:
        text = text.replace(secret, "[key]")
    return text if len(text) <= limit else text[:limit] + "..."


def share(total: int | None, parts: int, index: int) -> int | None:
    """Shard `index`'s equal share of a cap `total` (None = no cap); the shares sum to total."""
    if total is None:
        return None
    return total // parts + (1 if index < total % parts else 0)


@contextlib.contextmanager
def open_backend(
    settings: LLMSettings, threads: int = 2, server_log: str | Path | None = None
) -> Iterator[tuple[str | None, str]]:
    """Yield (base_url, api_key) for `settings`; the local backend runs its server meanwhile.

    base_url None (the openai backend) lets the client use OPENAI_BASE_URL or the official API.
    """
    if settings.backend == "local":
        from novic.llm_server import local_server

        with local_server(
            settings.model_path, settings.model, settings.n_ctx, threads, server_log
        ) as url:
            yield url, api_key_from_env(settings)
    elif settings.backend == "openai":
        yield None, api_key_from_env(settings)
    else:
        yield settings.base_url, api_key_from_env(settings)
