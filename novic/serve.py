"""`novic serve`: a local web page and JSON API for one trained model (FastAPI + uvicorn).

    app = create_app(Service(Classifier("results/models/minilm_ft12/decoder.pt"), "minilm_ft12"))

`GET /` is a self-contained page (novic/serve.html: no CDN, no build step), `GET /info` what is
loaded, and `POST /classify` classifies images (multipart uploads, field `image`), texts
(`text`) and, only when the server was given a files root, local files (`file`: paths or
file:// URLs inside that folder). Fields `gencfg`, `guide` (nouns, one per line or
comma-separated) and `top_k` choose the decoding. A JSON body {"texts": [...], "files": [...],
"gencfg": ..., "guide": [...], "top_k": ...} works too. The answer is `novic classify --json`'s.

Bounds (Limits): the request body and each image's bytes and pixels are capped (413 for the
body; a per-image error for an image, the others still run); at most `queue` requests wait for
the model, more get 503 with Retry-After. One worker thread owns the model: it takes every
request waiting when it frees up (up to `batch` images and texts) and embeds and decodes those
that share a decoding config as one batch, so concurrent requests batch at no extra latency.
Nothing a request names reaches the file system unless `files_root` is set, and then only
regular files below it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from novic.classify import Classifier, Result
from novic.decoding import NounDecoder
from novic.settings import GenConfig

log = logging.getLogger(__name__)
MB = 2**20
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much work may wait (`novic serve --help`)."""

    queue: int = 16  # requests waiting for the model; beyond: 503 + Retry-After
    batch: int = 32  # images + texts the worker takes at once (from several requests)
    max_items: int = 16  # images + texts + files per request
    max_request_bytes: int = 20 * MB  # the whole request body; beyond: 413
    max_image_bytes: int = 8 * MB  # one image file; beyond: that image's error
    max_pixels: int = 40_000_000  # one image's width x height; beyond: that image's error
    max_text_chars: int = 1_000
    max_beam: int = 50  # beam width (gencfg k)
    max_top_k: int = 50

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"serve limit {name} must be >= 1, got {value}")


class RequestError(ValueError):
    """A request that cannot be served as asked (HTTP `status`, message for the client)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Item:
    """One thing to classify: an uploaded image (bytes), a local file (path) or a text."""

    kind: str  # "image", "file" or "text"
    name: str
    data: bytes | str = b""
    error: str = ""  # refused before it was queued (too large)


@dataclass
class Job:
    """One request's items, its decoder, and where the results go (called once, any thread)."""

    items: list[Item]
    decoder: NounDecoder
    done: Callable[[list[Result] | BaseException], None]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.items)


def decode_image(data: bytes, name: str, max_pixels: int) -> Any:
    """Image bytes as 8-bit RGB shrunk for the embedder (novic.datasets.to_rgb); ValueError
    naming the image if they are no image or it has more than `max_pixels` pixels."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from novic.datasets import READ_SIDE, to_rgb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels rules
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise RequestError(
                        f"{name}: {w}x{h} pixels is more than this server's limit of "
                        f"{max_pixels:,} (novic serve --max-pixels)"
                    )
                im.draft("RGB", (READ_SIDE, READ_SIDE))  # JPEG: decode no larger than needed
                return to_rgb(im)
    except RequestError:
        raise
    except UnidentifiedImageError:
        raise ValueError(f"{name}: cannot read image: not an image format Pillow reads") from None
    except Exception as exc:  # PIL raises many kinds (OSError, SyntaxError, ...)
        raise ValueError(f"{name}: cannot read image: {exc}") from exc


def parse_guide(guide: str | Sequence[str] | None) -> list[str] | None:
    """Class names (one per line or comma-separated, '#' comments) as the model's canonical
    nouns; None (the model's own nouns) when there are none. Unusable names are an error."""
    from novic.forms import canonical

    if guide is None:
        return None
    if isinstance(guide, str):
        lines = [line.split("#", 1)[0] for line in guide.splitlines()]
        guide = [part for line in lines for part in line.split(",")]
    names = [name.strip() for name in guide if name.strip()]
    bad = [name for name in names if canonical(name) is None]
    if bad:
        raise RequestError(
            f"guide: {len(bad)} name(s) are no nouns the model could output: {bad[:5]}"
        )
    nouns = list(dict.fromkeys(n for name in names if (n := canonical(name))))
    return nouns or None


def multipart_body(
    fields: Sequence[tuple[str, str]] = (), files: Sequence[tuple[str, str, bytes]] = ()
) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type, for clients (tests, bench/serve.py):
    `fields` as (name, value), `files` as (field name, file name, bytes)."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Service:
    """One loaded model behind a bounded queue and one worker thread (`start`, `stop`).

    `submit(job)` queues a request's items or raises queue.Full; `decoder(gencfg, guide)`
    checks a decoding request and returns its NounDecoder (a few are kept, all on the one
    model). `files_root` lets requests name local files below it (default: none may).
    """

    def __init__(
        self,
        classifier: Classifier,
        model: str,
        limits: Limits | None = None,
        top_k: int = 5,
        files_root: str | Path | None = None,
        decoders: int = 8,
    ) -> None:
        self.classifier = classifier
        self.model = model
        self.limits = limits or Limits()
        if not 1 <= top_k <= self.limits.max_top_k:
            raise ValueError(f"top_k must be 1..{self.limits.max_top_k}, got {top_k}")
        self.top_k = top_k
        self.files_root = Path(files_root).resolve() if files_root else None
        if self.files_root and not self.files_root.is_dir():
            raise ValueError(f"files root {files_root} is not a folder")
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=self.limits.queue)
        self._decoders: OrderedDict[tuple[str, tuple[str, ...] | None], NounDecoder] = OrderedDict()
        self._decoders[(classifier.decoder.cfg.name, None)] = classifier.decoder
        self._max_decoders = decoders
        self._decoders_lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.seconds_per_job = 0.1  # running mean of the worker's time per request
        self.images, self.texts = self._probe()

    def _probe(self) -> tuple[bool, bool]:
        """Which towers the embedder has (and a first pass through the model, so that the
        first request is not slowed by lazy set-up)."""
        from PIL import Image

        from novic.embedders import TextOnlyError

        clf = self.classifier
        can: list[bool] = []
        for encode in (
            lambda: clf.embed([Image.new("RGB", (32, 32), "gray")]),
            lambda: clf.embedder.encode_texts(["a photo of a thing"]),
        ):
            try:
                clf.decode(encode())
                can.append(True)
            except (TextOnlyError, NotImplementedError):
                can.append(False)
        return can[0], can[1]

    def info(self) -> dict[str, Any]:
        """What is loaded and what requests may ask (GET /info)."""
        clf = self.classifier
        meta = clf.record.get("meta", {})
        return {
            "model": self.model,
            "run": meta.get("run", ""),
            "embedder": clf.embedder.spec.to_dict(),
            "embedder_description": clf.embedder.spec.describe(),
            "device": str(clf.device),
            "nouns": len(clf.nouns),
            "gencfg": clf.decoder.cfg.name,
            "top_k": self.top_k,
            "images": self.images,
            "texts": self.texts,
            "files": self.files_root is not None,
            "limits": asdict(self.limits),
        }

    def decoder(self, gencfg: str | None, guide: Sequence[str] | None) -> NounDecoder:
        """The NounDecoder for a generation config name and guide nouns (None: the server's
        defaults); RequestError naming what is wrong with them."""
        if gencfg is None and guide is None:
            return self.classifier.decoder
        try:
            cfg = GenConfig.parse(gencfg or self.classifier.decoder.cfg.name)
        except ValueError as exc:
            raise RequestError(f"gencfg: {exc}") from None
        if cfg.k > self.limits.max_beam:
            raise RequestError(
                f"gencfg {cfg.name}: beam width {cfg.k} is more than this server's limit of "
                f"{self.limits.max_beam} (novic serve --max-beam)"
            )
        key = (cfg.name, tuple(sorted(guide)) if guide else None)
        with self._decoders_lock:
            if key in self._decoders:
                self._decoders.move_to_end(key)
                return self._decoders[key]
        base = self.classifier.decoder
        try:
            decoder = NounDecoder(
                base.model, self.classifier.targets, cfg, guide=guide or None,
                detokenize=base.detokenize, batch_size=base.batch_size,
            )  # fmt: skip
        except ValueError as exc:
            raise RequestError(f"guide: {exc}") from None
        with self._decoders_lock:
            self._decoders[key] = decoder
            while len(self._decoders) > self._max_decoders:
                self._decoders.popitem(last=False)
        return decoder

    def retry_after(self) -> int:
        """Seconds a refused client should wait: about the time to work through the queue."""
        return max(1, math.ceil((self.queue.qsize() + 1) * self.seconds_per_job))

    def submit(self, job: Job) -> None:
        """Queue a request's job, or raise queue.Full (answered with 503)."""
        if self._stop.is_set():
            raise queue.Full
        self.queue.put_nowait(job)

    def start(self) -> None:
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="novic-serve-worker", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Stop the worker after its current batch; waiting requests are answered with an
        error."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            job.done(RuntimeError("the server is shutting down"))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = [self.queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            size = jobs[0].size
            while size < self.limits.batch:  # batch what is waiting; never wait for more
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
                size += jobs[-1].size
            start = time.perf_counter()
            self.process(jobs)
            per_job = (time.perf_counter() - start) / len(jobs)
            self.seconds_per_job = 0.8 * self.seconds_per_job + 0.2 * per_job

    def process(self, jobs: Sequence[Job]) -> None:
        """Classify the jobs' items, one embed-and-decode batch per decoder, and hand each job
        its results (or the exception that stopped its batch)."""
        groups: dict[int, list[Job]] = {}
        for job in jobs:
            groups.setdefault(id(job.decoder), []).append(job)
        for group in groups.values():
            try:
                outcomes: list[list[Result] | BaseException] = list(self._run(group))
            except Exception as exc:  # the model failed: these requests get a 500
                log.exception("classifying %d request(s) failed", len(group))
                outcomes = [exc] * len(group)
            for job, outcome in zip(group, outcomes, strict=True):
                job.done(outcome)

    def _run(self, jobs: Sequence[Job]) -> list[list[Result]]:
        clf = self.classifier
        results = [[self._result(item) for item in job.items] for job in jobs]
        images: list[tuple[Result, Any]] = []
        texts: list[tuple[Result, str]] = []
        for job, job_results in zip(jobs, results, strict=True):
            for item, result in zip(job.items, job_results, strict=True):
                if result.error:
                    continue
                if item.kind == "text":
                    texts.append((result, str(item.data)))
                    continue
                try:
                    images.append((result, self._read(item)))
                except Exception as exc:  # that image's error; the others go on
                    result.error = str(exc) or type(exc).__name__
        parts = []
        if images:
            parts.append(clf.embed([image for _, image in images]))
        if texts:
            parts.append(clf.embedder.encode_texts([t for _, t in texts], clf.batch_size))
        if parts:
            predictions = jobs[0].decoder(np.concatenate(parts))
            done = [r for r, _ in images] + [r for r, _ in texts]
            for result, preds in zip(done, predictions, strict=True):
                result.predictions = preds
        return results

    def _result(self, item: Item) -> Result:
        result = Result(item.name, source_type="text" if item.kind == "text" else "image")
        result.error = item.error
        if not result.error and item.kind != "text" and not self.images:
            result.error = f"{item.name}: the model's embedder has no image tower"
        if not result.error and item.kind == "text" and not self.texts:
            result.error = "the model's embedder has no text tower"
        return result

    def _read(self, item: Item) -> Any:
        """An uploaded image or a local file (below files_root) as a PIL image."""
        if item.kind == "image":
            return decode_image(bytes(item.data), item.name, self.limits.max_pixels)
        path = self.local_path(str(item.data))
        size = path.stat().st_size
        if size > self.limits.max_image_bytes:
            raise RequestError(self._too_large(item.name, size))
        return decode_image(path.read_bytes(), item.name, self.limits.max_pixels)

    def local_path(self, name: str) -> Path:
        """A path or file:// URL as a regular file below files_root; RequestError otherwise."""
        if self.files_root is None:
            raise RequestError(f"{name}: reading local files is off (novic serve --files-root)")
        url = urlparse(name)
        if url.scheme not in ("", "file") or url.netloc not in ("", "localhost"):
            raise RequestError(f"{name}: only local files (a path or file:// URL) are read")
        text = unquote(url.path) if url.scheme == "file" else name
        path = Path(text) if Path(text).is_absolute() else self.files_root / text
        path = path.resolve()
        if not path.is_relative_to(self.files_root):
            raise RequestError(f"{name}: not inside the served folder {self.files_root}")
        if not path.is_file():
            raise RequestError(f"{name}: no such file (regular files only)")
        return path

    def _too_large(self, name: str, size: int) -> str:
        limit = self.limits.max_image_bytes
        return (
            f"{name}: {size / MB:.1f} MB is more than this server's limit of {limit / MB:g} MB "
            "per image (novic serve --max-image-mb)"
        )

    async def read_request(self, request: Request) -> tuple[list[Item], dict[str, Any]]:
        """A /classify request's items and options (gencfg, guide, top_k), within the limits."""
        limit = self.limits.max_request_bytes
        declared = request.headers.get("content-length", "")
        chunks, size = [], 0
        async for chunk in request.stream():  # beyond the limit: read on (up to 8 times it)
            size += len(chunk)  # and discard, so that simple clients get to read the 413
            if size <= limit:
                chunks.append(chunk)
            elif size > 8 * limit:
                break
        if size > limit:
            raise RequestError(self._body_too_large(max(size, int("0" + declared))), 413)
        body = b"".join(chunks)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            return self._json_items(body)
        if kind != "multipart/form-data":
            raise RequestError(
                "send multipart/form-data (fields image, text, file) or application/json "
                f"(texts, files), not {kind or 'no content type'!r}",
                415,
            )

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        n = self.limits.max_items
        form = await Request(request.scope, replay).form(
            max_files=n, max_fields=n + 8, max_part_size=limit
        )
        try:
            items: list[Item] = []
            for i, upload in enumerate(form.getlist("image")):
                if isinstance(upload, str):
                    raise RequestError("field image: send image files (multipart uploads)")
                name = upload.filename or f"upload {i + 1}"
                data = await upload.read(self.limits.max_image_bytes + 1)
                too_large = len(data) > self.limits.max_image_bytes
                error = self._too_large(name, upload.size or len(data)) if too_large else ""
                items.append(Item("image", name, b"" if error else data, error))
            for kind in ("file", "text"):
                values = form.getlist(kind)
                if not all(isinstance(v, str) for v in values):
                    raise RequestError(f"field {kind}: send text, not a file upload")
                items += [Item(kind, str(v), str(v)) for v in values]
            options = {k: str(form[k]) for k in ("gencfg", "guide", "top_k") if k in form}
        finally:
            await form.close()
        return self._check(items), options

    def _json_items(self, body: bytes) -> tuple[list[Item], dict[str, Any]]:
        import json

        try:
            data = json.loads(body)
        except ValueError as exc:
            raise RequestError(f"the JSON body does not parse: {exc}") from None
        if not isinstance(data, dict):
            raise RequestError("the JSON body must be an object: {texts, files, gencfg, ...}")
        unknown = sorted(set(data) - {"texts", "files", "gencfg", "guide", "top_k"})
        if unknown:
            raise RequestError(f"unknown JSON keys {unknown} (images go as multipart uploads)")
        lists = {k: data.get(k) or [] for k in ("files", "texts")}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RequestError(f"{key} must be a list of strings")
        items = [Item("file", f, f) for f in lists["files"]]
        items += [Item("text", t, t) for t in lists["texts"]]
        options = {k: data[k] for k in ("gencfg", "guide", "top_k") if data.get(k) is not None}
        return self._check(items), options

    def _check(self, items: list[Item]) -> list[Item]:
        if not items:
            raise RequestError("nothing to classify: send images, texts or files")
        if len(items) > self.limits.max_items:
            raise RequestError(
                f"{len(items)} images and texts is more than this server's limit of "
                f"{self.limits.max_items} per request (novic serve --max-items)"
            )
        if self.files_root is None and any(i.kind == "file" for i in items):
            raise RequestError("reading local files is off: start novic serve with --files-root")
        for item in items:
            if item.kind == "text" and len(str(item.data)) > self.limits.max_text_chars:
                raise RequestError(
                    f"a text of {len(str(item.data)):,} characters is more than this server's "
                    f"limit of {self.limits.max_text_chars:,}"
                )
        return items

    def _body_too_large(self, size: int) -> str:
        limit = self.limits.max_request_bytes
        return (
            f"the request body ({size / MB:.1f} MB or more) is more than this server's limit of "
            f"{limit / MB:g} MB (novic serve --max-request-mb)"
        )

    def options(self, raw: dict[str, Any]) -> tuple[NounDecoder, int]:
        """The decoder and top_k a request asks for (its `gencfg`, `guide`, `top_k`)."""
        top_k = raw.get("top_k", self.top_k)
        try:
            top_k = int(top_k)
        except (TypeError, ValueError):
            raise RequestError(f"top_k must be an integer, got {top_k!r}") from None
        if not 1 <= top_k <= self.limits.max_top_k:
            raise RequestError(f"top_k must be 1..{self.limits.max_top_k}, got {top_k}")
        gencfg = raw.get("gencfg") or None
        if gencfg is not None and not isinstance(gencfg, str):
            raise RequestError("gencfg must be a generation config name")
        guide = raw.get("guide")
        if guide is not None and not isinstance(guide, str | list):
            raise RequestError("guide must be nouns: a list, or one per line")
        return self.decoder(gencfg, parse_guide(guide)), top_k


def create_app(service: Service) -> FastAPI:
    """The FastAPI app around a Service; its lifespan starts and stops the worker."""

    page = resources.files("novic").joinpath("serve.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="novic", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    csp = (
        "default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; connect-src 'self'; form-action 'none'"
    )

    def error(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": csp})

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return service.info()

    @app.post("/classify")
    async def classify(request: Request) -> JSONResponse:
        try:
            items, raw = await service.read_request(request)
            decoder, top_k = await run_in_threadpool(service.options, raw)
        except RequestError as exc:
            return error(exc.status, str(exc))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Result] | BaseException] = loop.create_future()

        def settle(outcome: list[Result] | BaseException) -> None:
            if not future.done():
                future.set_result(outcome)

        def done(outcome: list[Result] | BaseException) -> None:
            loop.call_soon_threadsafe(settle, outcome)

        try:
            service.submit(Job(items, decoder, done))
        except queue.Full:
            wait = service.retry_after()
            message = f"the server is busy ({service.limits.queue} requests waiting); retry later"
            return error(503, message, **{"Retry-After": str(wait)})
        outcome = await future
        if isinstance(outcome, BaseException):
            return error(500, f"classification failed: {outcome}")
        return JSONResponse(
            {
                "model": service.model,
                "gencfg": decoder.cfg.name,
                "device": str(service.classifier.device),
                "results": [r.to_dict(top_k) for r in outcome],
            }
        )

    return app


def serve_command(
    model: str,
    host: str,
    port: int,
    limits: Limits,
    gencfg: str,
    top_k: int,
    device: str,
    files_root: str | None,
    cache_dir: str | None,
    allow_download: bool = False,
    trust_pickled: bool = False,
) -> int:
    """What `novic serve` runs: load the model, then serve until interrupted."""
    import uvicorn

    from novic.embedders import EmbedderLoadError

    try:
        clf = Classifier(
            model, gencfg, None, device, limits.batch, offline=not allow_download,
            cache_dir=cache_dir, allow_pickle=trust_pickled,
        )  # fmt: skip
    except EmbedderLoadError as exc:
        if allow_download:
            raise
        raise EmbedderLoadError(f"{exc} (--allow-download lets novic serve fetch it)") from exc
    service = Service(clf, model, limits, top_k, files_root)
    if host not in LOOPBACK:
        log.warning(
            "serving on %s: anyone who can reach this address can use the model (no login)", host
        )
    if files_root:
        log.warning("requests may read image files below %s", service.files_root)
    app = create_app(service)
    if host in ("127.0.0.1", "localhost"):  # refuse other Host headers (DNS rebinding)
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    shown = f"[{host}]" if ":" in host else host
    print(f"novic serve: {model} on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(
        app, host=host, port=port, log_level="warning", limit_concurrency=4 * limits.queue + 16
    )
    return 0
