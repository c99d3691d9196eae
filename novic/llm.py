"""Chat requests to any OpenAI-compatible backend: caching, concurrency, retries, cost caps.

Every request goes through the `openai` client (AsyncOpenAI, its own retries off). On top:

- ReplyCache: an append-only JSON-lines file, one line per answered request, flushed and
  fsynced. A request is identified by `request_key`, a hash of everything that determines it,
  so a re-run (or a run after a kill at any moment) only sends what was never answered.
  Before sending, a process claims the key (a claim file, under a lock); another process that
  finds a live claim waits for the reply to reach the cache instead of sending it too. A claim
  of a dead process (or one past its lease) is taken over.
- LLMClient.complete(): cache lookup, then a concurrency slot, then the claim, then the caps,
  then the request (with a total deadline) with exponential backoff and full jitter on
  429/5xx/timeouts/connection errors, honouring Retry-After. Errors that retrying cannot fix
  (bad key, unknown model) stop the run.
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
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from novic.io import sha256_json
from novic.llm_server import exit_with_parent, process_alive, process_start_time
from novic.settings import LLMSettings, RequestSettings

T = TypeVar("T")

log = logging.getLogger(__name__)

CACHE_BUCKETS = 64  # fixed: changing it would hide the cached replies
OPENAI_KEY_ENV = "OPENAI_API_KEY"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# Status codes worth retrying (the openai client retries the same set).
RETRY_STATUS = {408, 409, 429}
# How often a process polls the cache for a request that another process is sending.
WAIT_FIRST, WAIT_MAX = 0.05, 1.0


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


def llm_identity(settings: LLMSettings, base_url: str) -> dict[str, Any]:
    """What identifies the replies of `settings` sent to `base_url` (the effective endpoint).

    openai-compatible names its base_url already; the local backend's URL is a random loopback
    port, so its identity is the fixed backend name. The openai backend adds the endpoint only
    when it is not the official one (OPENAI_BASE_URL set elsewhere): keys of the default
    endpoint stay what they were, and replies of another endpoint are never replayed for it.
    """
    ident = settings.identity()
    url = base_url.rstrip("/")
    if settings.backend == "openai" and url and url != OPENAI_DEFAULT_URL:
        ident["base_url"] = url
    return ident


def display_url(url: str) -> str:
    """`url` without user info, query or fragment (which may hold a credential)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


_HOST = socket.gethostname()


@contextlib.contextmanager
def _flocked(fd: int) -> Iterator[None]:
    """Hold an exclusive lock on open file `fd` (across processes) while the block runs."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


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

    Claims: `claims/KEY.json` records which process (host, pid, start time, lease end) is
    sending a request; it is written and removed under an exclusive lock on the bucket's
    `claims/bucket-NNN.lock`, after re-reading the bucket. A process appends the reply before it
    removes its claim, so one that finds neither a reply nor a live claim may send.
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
        self._claim_fds: dict[int, int] = {}
        self._claimed: dict[str, tuple[int, dict[str, Any]]] = {}  # key -> (bucket, record)
        self._me = {"host": _HOST, "pid": os.getpid(), "start": process_start_time(os.getpid())}
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
        with _flocked(fd):
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        self.entries.setdefault(entry["key"], entry)

    def claim_path(self, key: str) -> Path:
        return self.folder / "claims" / f"{key}.json"

    @contextlib.contextmanager
    def _claims_locked(self, bucket: int) -> Iterator[None]:
        fd = self._claim_fds.get(bucket)
        if fd is None:
            folder = self.folder / "claims"
            folder.mkdir(exist_ok=True)
            path = folder / f"bucket-{bucket:03d}.lock"
            fd = self._claim_fds[bucket] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with _flocked(fd):
            yield

    def _live_owner(self, key: str) -> dict[str, Any] | None:
        """The claim record of `key` if its owner may still send it, else None."""
        path = self.claim_path(key)
        try:
            record = json.loads(path.read_bytes())
            host, pid, expires = record["host"], int(record["pid"]), float(record["expires"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: unreadable claim, taken over", path)
            return None
        mine = {k: record.get(k) for k in self._me} == self._me
        if mine:
            return record if key in self._claimed else None
        if time.time() > expires:
            reason = "its lease expired"
        elif host == _HOST and not process_alive(pid, record.get("start")):
            reason = "that process is gone"
        else:
            return record
        log.warning(
            "request %s: taking over the claim of pid %d on %s (%s)", key[:12], pid, host, reason
        )
        return None

    def claim(
        self, key: str, bucket: int, lease: float
    ) -> tuple[Literal["mine", "answered", "busy"], dict[str, Any] | None]:
        """Claim request `key` for this process for up to `lease` seconds.

        ("answered", entry) if its reply is in the cache; ("busy", the owner's claim record) if
        a live process (or a coroutine of this one) is sending it; else ("mine", None): send it,
        put() the reply, then release().
        """
        with self._claims_locked(bucket):
            self._read_new(bucket)
            entry = self.entries.get(key)
            if entry is not None:
                return "answered", entry
            owner = self._live_owner(key)
            if owner is not None:
                return "busy", owner
            record = {**self._me, "time": round(time.time(), 3)}
            record["expires"] = round(record["time"] + lease, 3)
            path = self.claim_path(key)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, path)
            self._claimed[key] = (bucket, record)
            return "mine", None

    def release(self, key: str) -> None:
        """Drop this process's claim of `key` (after its reply, if any, was put)."""
        held = self._claimed.pop(key, None)
        if held is None:
            return
        bucket, record = held
        path = self.claim_path(key)
        with self._claims_locked(bucket):
            try:
                current = json.loads(path.read_bytes())
            except (OSError, ValueError):
                return
            if current == record:  # not taken over meanwhile
                path.unlink()

    def paid(self) -> tuple[int, int]:
        """(requests, tokens) of the entries held: every cached reply was paid for."""
        tokens = sum(
            e["usage"]["prompt_tokens"] + e["usage"]["completion_tokens"]
            for e in self.entries.values()
        )
        return len(self.entries), tokens

    def close(self) -> None:
        for key in list(self._claimed):
            self.release(key)
        for fd in [*self._fds.values(), *self._claim_fds.values()]:
            os.close(fd)
        self._fds.clear()
        self._claim_fds.clear()


@dataclass
class Usage:
    """Counters for the stats file. `sent` counts HTTP attempts made by this run."""

    sent: int = 0
    answered: int = 0
    cached: int = 0
    waited: int = 0  # of the cached: answered by another process while this one waited
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
        cap_scope: str = "for this shard (its share of captions.requests.{cap} is {value})",
    ) -> None:
        """`cap_scope` says in a cap's message what the cap bounds ({cap}: its key, {value})."""
        import openai  # imported here so that the module loads without it

        self.settings = settings
        self.policy = policy
        self.cache = cache
        self.usage = Usage()
        self.usage.paid_before_requests, self.usage.paid_before_tokens = cache.paid()
        self.stop_reason: LLMError | None = None
        self.cap_scope = cap_scope
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
        self.url = str(self._client.base_url).rstrip("/")  # the effective endpoint
        self._identity = {**llm_identity(settings, self.url), "seed": settings.seed}
        # A claim outlives the longest a request can take: every attempt to its deadline, with
        # the longest wait between attempts.
        self._lease = (
            (policy.max_retries + 1) * policy.timeout + policy.max_retries * policy.backoff_max + 60
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
        return request_key(self._identity, self.body(messages), call)

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
            scope = self.cap_scope.format(cap="max_requests", value=p.max_requests)
            self.stop(
                BudgetExceeded(
                    f"request cap reached: {requests} requests sent {scope}; finished replies "
                    "are cached, raise the cap and re-run to continue"
                )
            )
        elif p.max_tokens is not None and tokens >= p.max_tokens:
            scope = self.cap_scope.format(cap="max_tokens", value=p.max_tokens)
            self.stop(
                BudgetExceeded(
                    f"token cap reached: {tokens} tokens used {scope}; finished replies are "
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
        `bucket` is the cache file it belongs to. A request that another process has claimed
        is not sent: its reply is awaited in the cache (or the claim taken over if it dies).
        """
        key = self.key(messages, call)
        delay, waited = WAIT_FIRST, False
        while True:
            entry = self.cache.get(key, bucket)
            if entry is None:
                if self.stop_reason is not None:
                    return None
                async with self._slots:
                    state, found = self.cache.claim(key, bucket, self._lease)
                    if state == "mine":
                        try:
                            return await self._send(key, messages, meta or {}, bucket)
                        except _Stopped:
                            return None
                        finally:
                            self.cache.release(key)
                entry = found if state == "answered" else None
            if entry is not None:
                self.usage.cached += 1
                self.usage.waited += int(waited)
                return _reply_from_entry(entry, cached=True)
            if not waited:  # another process (or coroutine) is sending it: wait for its reply
                owner = found or {}
                log.info(
                    "request %s: being sent by pid %s on %s, waiting for its reply",
                    key[:12],
                    owner.get("pid"),
                    owner.get("host"),
                )
                waited = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, WAIT_MAX)

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
                # The client's timeout bounds each read; this bounds the whole request.
                response = await asyncio.wait_for(
                    self._client.chat.completions.create(
                        **body, extra_headers={"X-Novic-Request-Key": key}
                    ),
                    p.timeout,
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
                        f"(model {self.settings.model!r} at {display_url(self.url)})"
                    )
                if wait is not None and wait > p.backoff_max:
                    self._stop_and_raise(
                        f"server asked to retry after {wait:.0f} s, longer than "
                        f"captions.requests.backoff_max={p.backoff_max}"
                    )
                if attempt == p.max_retries:
                    if kind != "malformed":
                        self._stop_and_raise(
                            f"request to {display_url(self.url)} failed {attempt + 1} times "
                            f"({kind}: {_short(exc, self._secret)}); finished replies are "
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
        if isinstance(exc, oa.APITimeoutError | TimeoutError):  # per read, or the deadline
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


def run_requests(
    settings: LLMSettings,
    policy: RequestSettings,
    cache: ReplyCache,
    work: Callable[[LLMClient], Awaitable[T]],
    threads: int = 2,
    server_log: str | Path | None = None,
    **client_options: Any,
) -> tuple[T, LLMClient, float]:
    """Open the backend (the local one starts its server), run `work(client)` with one client
    in an event loop, close the client; return the result, the client (its usage, its stop
    reason) and the seconds the requests took (without the server's start).

    If the process that started this job (Snakemake) dies, nothing more is sent: the requests
    in flight finish and are cached, then `client.raise_if_stopped()` fails the job. A job that
    outlived a killed Snakemake would otherwise send next to the re-run's job.
    """
    running: dict[str, Any] = {}

    def parent_died() -> None:
        reason = LLMError("the process that started this job (Snakemake?) is gone")
        if "client" in running:
            with contextlib.suppress(RuntimeError):  # the loop has just ended
                running["loop"].call_soon_threadsafe(running["client"].stop, reason)

    with (
        exit_with_parent(parent_died, grace=policy.timeout + 10),
        open_backend(settings, threads, server_log) as (base_url, api_key),
    ):

        async def main() -> tuple[T, LLMClient]:
            client = LLMClient(settings, policy, cache, base_url, api_key, **client_options)
            running.update(client=client, loop=asyncio.get_running_loop())
            try:
                return await work(client), client
            finally:
                await client.aclose()

        started = time.monotonic()
        result, client = asyncio.run(main())
        return result, client, time.monotonic() - started
