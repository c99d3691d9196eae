"""Decoder training (reference section 6): loss, optimizer, chunked cosine schedule, resume.

The loop streams raw batches of `batch_size` embeddings from a loader (novic.loader API:
`epoch(e, start_batch)`, `rows_per_epoch`, `dim`), adds noise on the device, and trains the
decoder on every target of every sample (multi-target):

- loss: token cross-entropy up to and including each target's end token, each target's token
  losses weighted by its weight (1/m in an Mm sample), normalised by the weighted token count
  sum_a w_a sum_t CE / sum_a w_a n_a; accumulated over `accum` raw batches (each divided by
  accum), then the gradient is clipped to global norm `grad_clip` and AdamW steps (betas
  `beta1`/`beta2`, weight decay on parameters with 2+ dimensions only);
- chunks: a chunk is ceil(nouns x chunk_scale / batch_size) raw batches; training runs
  epochs x epoch_batches // chunk_batches chunks (FT0: 4,192 batches per chunk, 433 chunks);
  the learning rate follows a cosine from `lr` to 0 over the chunks, stepped once per chunk;
- data: a background thread prepares up to `prefetch_batches` batches of the current epoch
  ahead of the step (takes them from the loader, flattens their targets, pins them for a
  GPU). The training thread opens each epoch (a loader's reader processes are forked there,
  never from the background thread while this one may hold a lock of torch's: a forked reader
  would wait on it forever) and advances the data position as it takes each batch, so a
  checkpoint records the last batch trained, not the last one prepared;
- metrics: per chunk one JSON line (loss, teacher-forced token accuracy and its exponentially
  smoothed value with a 4-chunk half-life, lr, grad norm, samples/s, ETA) and a log line;
- checkpoints: every `checkpoint_every` chunks the whole state (model, optimizer, gradients of
  an unfinished accumulation, data position, smoothed metrics) goes atomically to
  `{work}/checkpoint.pt`. Random numbers (dropout, noise) are re-seeded from (seed, chunk) at
  every chunk start, so a resumed run continues the same trajectory as an uninterrupted one.
  `{work}/metrics.jsonl` is rewritten atomically after each chunk; on resume it is cut to the
  checkpoint's chunks (one line per chunk, a torn or unreadable line dropped), and an
  unreadable checkpoint is moved aside and training starts afresh. The final metrics file holds
  exactly one line per chunk done, whatever another (orphaned) trainer wrote to `{work}`.
  The final decoder file (novic.checkpoint) holds what decoding needs: hyperparameters,
  weights, the target nouns and token map, the embedder spec and the run config.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch
import torch.nn.functional as F

from novic.checkpoint import save_decoder
from novic.device import device_name, enable_tf32, synchronize
from novic.io import atomic_path, sha256_json
from novic.model import ObjectDecoder, parameter_count
from novic.noise import apply_noise
from novic.progress import format_eta
from novic.schema import defaults
from novic.settings import DecoderSettings, RunSettings, TrainSettings
from novic.tokens import TargetTokens, build_target_tokens, load_tokenizer

log = logging.getLogger(__name__)

EWA_HALF_LIFE_CHUNKS = 4
PREFETCH_BATCHES: int = defaults("runs.*.train")["prefetch_batches"]


@dataclass(frozen=True)
class Plan:
    """The reference's chunk arithmetic."""

    chunk_batches: int  # raw batches per chunk
    epoch_batches: int  # complete raw batches per epoch
    chunks: int  # chunks in the whole run

    @property
    def total_batches(self) -> int:
        return self.chunks * self.chunk_batches


def plan_chunks(
    num_nouns: int, epoch_rows: int, batch_size: int, chunk_scale: float, epochs: float
) -> Plan:
    """Chunk size ceil(nouns x chunk_scale / batch) and epochs x epoch_batches // chunk chunks."""
    chunk_batches = math.ceil(num_nouns * chunk_scale / batch_size)
    epoch_batches = epoch_rows // batch_size
    chunks = int(epochs * epoch_batches) // chunk_batches
    if chunks < 1:
        raise ValueError(
            f"train.epochs x {epoch_batches} batches per epoch is less than one chunk of "
            f"{chunk_batches} batches (ceil({num_nouns} nouns x train.chunk_scale / "
            f"train.batch_size)): raise train.epochs or lower train.chunk_scale"
        )
    return Plan(chunk_batches=chunk_batches, epoch_batches=epoch_batches, chunks=chunks)


def cosine_lr(base: float, chunk: int, chunks: int) -> float:
    """Learning rate of chunk `chunk` (0-based): cosine from `base` to 0 over `chunks`."""
    return base * 0.5 * (1 + math.cos(math.pi * chunk / chunks))


# torch.compile's backend: "inductor" generates kernels (a C++ compiler on a CPU, Triton on a
# GPU); the tests use "aot_eager", which traces the same graphs without generating code.
COMPILE_BACKEND = "inductor"


def use_amp(amp: bool, device: torch.device) -> bool:
    """Whether training runs under bfloat16 autocast: asked for (train.amp) and on a GPU."""
    return amp and device.type == "cuda"


def compiled(model: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """The model's forward through torch.compile, with dynamic shapes (targets per batch vary)."""
    return torch.compile(model, dynamic=True, backend=COMPILE_BACKEND)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on parameters with 2+ dimensions, none on the rest."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def make_optimizer(model: torch.nn.Module, cfg: TrainSettings, device: torch.device) -> Any:
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        fused=device.type == "cuda",
    )


# --- batches -----------------------------------------------------------------------------------


@dataclass
class TargetBatch:
    """One raw batch, flattened to its targets: sample `rows[a]` has tokens[a] and weight[a]."""

    embedding: torch.Tensor  # float32 [B, F]
    rows: torch.Tensor  # int64 [A]
    tokens: torch.Tensor  # int64 [A, Cmax], compact, 0 = end/pad
    weights: torch.Tensor  # float32 [A]
    lengths: torch.Tensor  # int64 [A], tokens up to and including the first end token

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (self.embedding, self.rows, self.tokens, self.weights, self.lengths)

    def pin_memory(self) -> TargetBatch:
        """The batch in pinned host memory (what a non-blocking copy to a GPU needs)."""
        return TargetBatch(*(t if t.is_pinned() else t.pin_memory() for t in self.tensors()))

    def to(self, device: torch.device) -> TargetBatch:
        """The batch on `device`; to a GPU through pinned memory, without waiting for it (a
        copy from pageable memory may wait for the GPU's queue: a host sync every batch)."""
        if device.type != "cuda":
            return TargetBatch(*(t.to(device) for t in self.tensors()))
        return TargetBatch(*(t.to(device, non_blocking=True) for t in self.pin_memory().tensors()))


def flatten_targets(
    embedding: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    lookup: torch.Tensor,
    table: torch.Tensor,
    pad_to: int = 1,
) -> TargetBatch:
    """Keep the targets with weight > 0 of a [B, M] batch and look up their tokens (on the CPU).

    Zero-weight slots (padding of samples with fewer than M targets) are dropped rather than
    masked, which gives the same loss with less work. A positive weight on a noun id that is
    not a target noun is an error. `pad_to` rounds the number of targets up to a multiple with
    weight-0 rows (no loss, no gradient), so that a GPU sees few distinct shapes: each new one
    costs kernel selection and, for bfloat16 attention, a cuDNN plan (measured on an H100:
    the loop ran at a fifth of the bare step's rate with a new shape almost every batch).
    """
    keep = (weights > 0).reshape(-1)
    flat = targets.reshape(-1)[keep]
    if flat.numel() and int(flat.max()) >= lookup.numel():
        raise ValueError(f"noun id {int(flat.max())} is not among the target nouns")
    rows_in_table = lookup[flat]
    if flat.numel() and bool((rows_in_table == 0).any()):
        bad = int(flat[rows_in_table == 0][0])
        raise ValueError(f"noun id {bad} has a positive weight but is not a target noun")
    tokens = table[rows_in_table]
    m = targets.shape[1]
    rows = torch.arange(targets.shape[0]).repeat_interleave(m)[keep]
    kept_weights = weights.reshape(-1)[keep].float()
    pad = -len(rows) % pad_to
    if pad:
        rows = torch.cat([rows, rows.new_zeros(pad)])
        tokens = torch.cat([tokens, tokens.new_zeros(pad, tokens.shape[1])])
        kept_weights = torch.cat([kept_weights, kept_weights.new_zeros(pad)])
    lengths = (tokens != 0).sum(1) + 1
    return TargetBatch(embedding, rows, tokens, kept_weights, lengths)


# Targets per batch are rounded up to a multiple of this on a GPU (see flatten_targets).
GPU_TARGET_MULTIPLE = 64


def target_multiple(device: torch.device) -> int:
    """What flatten_targets pads the targets of a batch to on `device` (1: no padding)."""
    return GPU_TARGET_MULTIPLE if device.type == "cuda" else 1


def prepare_batches(
    raws: Iterable[Any], lookup: torch.Tensor, table: torch.Tensor, device: torch.device
) -> Generator[TargetBatch, None, None]:
    """The host work on each raw batch before its step: flatten_targets, padded for `device`,
    and for a GPU pinned, so that the training thread only issues the copy."""
    pad = target_multiple(device)
    for raw in raws:
        batch = flatten_targets(raw.embedding, raw.targets, raw.weights, lookup, table, pad)
        yield batch.pin_memory() if device.type == "cuda" else batch


def token_loss(
    logits: torch.Tensor, batch: TargetBatch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted token cross-entropy sum, weighted token count and weighted correct tokens.

    loss = sum / count is the reference's normalisation; correct / count is the teacher-forced
    token accuracy with the same weighting.
    """
    c = batch.tokens.shape[1]
    valid = torch.arange(c, device=logits.device)[None, :] < batch.lengths[:, None]
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch.tokens.reshape(-1), reduction="none"
    ).view_as(batch.tokens)
    w = batch.weights[:, None] * valid
    correct = (logits.argmax(-1) == batch.tokens).float()
    return (ce * w).sum(), w.sum(), (correct * w).sum()


# --- data stream -------------------------------------------------------------------------------


class Loader(Protocol):
    """What the loop needs of novic.loader.EmbeddingLoader."""

    rows_per_epoch: int
    dim: int

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Any]: ...


@dataclass
class Position:
    """Where the data stream is: the next batch is batch `batch` of epoch `epoch`."""

    epoch: int = 0
    batch: int = 0


def stream(
    loader: Loader,
    pos: Position,
    read: Callable[[Iterator[Any]], AbstractContextManager[Iterator[Any]]] = nullcontext,
) -> Iterator[Any]:
    """Batches from `pos` on, epoch after epoch; `pos` is advanced past each yielded batch.

    Each epoch is opened on the caller's thread (where a loader forks its reader processes)
    and its raw batches are read through `read` (train_decoder: prepared ahead in a thread,
    ReadAhead), left when the epoch ends or the stream is closed.
    """
    empty = 0
    while True:
        got = False
        with read(loader.epoch(pos.epoch, start_batch=pos.batch)) as batches:
            for batch in batches:
                got = True
                pos.batch += 1
                yield batch
        if not got and pos.batch == 0:
            empty += 1
            if empty > 1:
                raise RuntimeError(
                    "the loader yields no batches (is the data smaller than a batch?)"
                )
        pos.epoch, pos.batch = pos.epoch + 1, 0


T = TypeVar("T")
READ_AHEAD_THREAD = "novic-read-ahead"


class ReadAhead(Generic[T]):
    """The items of a generator, produced up to `depth` items ahead in a background thread.

    The thread puts the items on a queue of `depth` slots (and prepares one more while it is
    full); an exception it meets is raised by next() on the caller's thread, with its
    traceback. close(), or leaving the `with` block, stops the thread and waits for it to
    finish the item in hand. Depth 0: no thread, each item is produced when asked for.

    The generator should not fork (start a DataLoader's reader processes, say): a child forked
    while the caller's thread holds one of torch's locks (that of its random generator, in a
    training step) waits on that lock forever. Open such iterators before and pass them in.
    """

    def __init__(self, items: Generator[T, None, None], depth: int) -> None:
        if depth < 0:
            raise ValueError(f"read-ahead depth must be >= 0, got {depth}")
        self._items = items
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._last: tuple[str, Any] | None = None  # ("end" or "error", ...) once met
        self._thread: threading.Thread | None = None
        if depth:
            self._thread = threading.Thread(
                target=self._produce, name=READ_AHEAD_THREAD, daemon=True
            )
            self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as e:  # raised again on the caller's thread
            self._put(("error", e))
        finally:
            self._items.close()

    def _put(self, entry: tuple[str, Any]) -> bool:
        """Queue `entry` once there is room; False if the reader stops first."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._thread is None:
            return next(self._items)
        kind, value = self._last or self._queue.get()
        if kind == "item":
            return value
        self._last = (kind, value)
        if kind == "end":
            raise StopIteration
        raise value

    def close(self) -> None:
        """Stop producing items; return once the thread has ended."""
        if self._thread is None:
            self._items.close()
            return
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- run ---------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Everything a resumed run needs beyond model and optimizer."""

    chunk: int = 0  # chunks done
    micro: int = 0  # raw batches done
    samples: int = 0
    position: Position = field(default_factory=Position)
    smoothed_accuracy: float | None = None
    elapsed: float = 0.0


def chunk_seed(seed: int, chunk: int) -> int:
    return (seed * 1_000_003 + chunk * 7_919 + 12_345) % (2**63 - 1)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """The metric records of `path` (none if it is absent); an unreadable line, such as the torn
    last line of a killed write, is dropped and logged."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("chunk"), int):
                raise ValueError("no chunk number")
        except ValueError as e:
            what = "torn last" if number == len(lines) else "unreadable"
            log.warning("%s: dropping its %s line %d (%s)", path, what, number, e)
            continue
        records.append(record)
    return records


def _metrics_upto(records: list[dict[str, Any]], chunks: int) -> list[dict[str, Any]]:
    """One record per chunk 1..`chunks` (the last one written wins), in chunk order."""
    by_chunk = {r["chunk"]: r for r in records if 1 <= r["chunk"] <= chunks}
    return [by_chunk[c] for c in sorted(by_chunk)]


def _write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    """Write metric records as JSON lines, atomically."""
    with atomic_path(path, sync=True) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _truncate_metrics(path: Path, chunks: int) -> list[dict[str, Any]]:
    """The metric records of chunks 1..`chunks` (those of the checkpoint being resumed), one per
    chunk; `path` is rewritten to hold just them (removed if there are none)."""
    records = _metrics_upto(_read_metrics(path), chunks)
    if len(records) < chunks:
        log.warning("%s: metrics of %d of the %d chunks done are missing", path,
                    chunks - len(records), chunks)  # fmt: skip
    if records:
        _write_metrics(path, records)
    else:
        path.unlink(missing_ok=True)
    return records


def build_model(
    settings: RunSettings, targets: TargetTokens, embed_dim: int, device: torch.device
) -> ObjectDecoder:
    cfg = DecoderSettings.from_settings(
        settings.model, embed_dim, targets.vocab_size, targets.max_tokens
    )
    return ObjectDecoder(cfg).to(device)


@dataclass
class _Run:
    """What the steps of train_decoder share: settings, model, optimizer, state and data."""

    settings: RunSettings
    targets: TargetTokens
    loader: Loader
    device: torch.device
    meta: Mapping[str, Any]
    plan: Plan
    identity: str
    model: ObjectDecoder
    optimizer: Any
    state: TrainState
    ckpt_path: Path
    work_metrics: Path
    lookup: torch.Tensor  # noun id -> row of `table`
    table: torch.Tensor  # compact target tokens, one row per target noun
    gen: torch.Generator  # noise
    amp: bool
    forward: Callable[..., torch.Tensor]  # the model, or its torch.compile'd forward
    metrics: list[dict[str, Any]] = field(default_factory=list)  # chunks done, as in work_metrics


@dataclass
class _ChunkSums:
    """One chunk's running totals; `sums` (on the device) is loss, count, correct, gn, steps."""

    sums: torch.Tensor
    gn_max: torch.Tensor
    lr: float
    samples: int = 0
    seconds: float = 0.0


def train_decoder(
    loader: Loader,
    targets: TargetTokens,
    settings: RunSettings,
    decoder_path: str | Path,
    metrics_path: str | Path,
    work_dir: str | Path,
    device: torch.device,
    meta: Mapping[str, Any],
    checkpoint_every: int = 12,
    progress_seconds: float = 60.0,
    on_chunk: Callable[[int], None] | None = None,
    heldout: Loader | None = None,
    compile: bool = False,
    prefetch_batches: int = PREFETCH_BATCHES,
) -> dict[str, Any]:
    """Train a decoder from `loader` and write `decoder_path` and `metrics_path`.

    `meta` (embedder spec, run config, data identity) is stored in every checkpoint; it and
    the settings and targets decide whether `{work_dir}/checkpoint.pt` can be resumed (else
    training starts afresh). `on_chunk(chunks_done)` is called after each chunk's checkpoint.
    Returns the last metrics line plus the parameter count (and, given a `heldout` loader,
    the loss and token accuracy on its rows as "heldout"). `compile`: run the decoder's
    forward through torch.compile (dynamic shapes: the number of targets varies by batch).
    `prefetch_batches`: batches a background thread prepares ahead (0: none, each batch is
    prepared on this thread); the thread ends with the training, also when it raises.
    """
    run = _set_up(loader, targets, settings, Path(work_dir), device, meta, compile)

    def prepared(raws: Iterator[Any]) -> ReadAhead[TargetBatch]:
        return ReadAhead(prepare_batches(raws, run.lookup, run.table, device), prefetch_batches)

    last: dict[str, Any] = {}
    with closing(stream(run.loader, run.state.position, prepared)) as batches:
        while run.state.chunk < run.plan.chunks:
            last = _end_chunk(run, _train_chunk(run, batches, progress_seconds))
            if run.state.chunk < run.plan.chunks and run.state.chunk % checkpoint_every == 0:
                _save_training(
                    run.ckpt_path, run.model, run.optimizer, run.state, run.identity, meta
                )
            if on_chunk is not None:
                on_chunk(run.state.chunk)
    return _finish(run, last, decoder_path, metrics_path, heldout, prefetch_batches)


def _set_up(
    loader: Loader,
    targets: TargetTokens,
    settings: RunSettings,
    work: Path,
    device: torch.device,
    meta: Mapping[str, Any],
    compile: bool = False,
) -> _Run:
    """Plan the chunks, build the model and optimizer, resume a checkpoint of the same run."""
    tcfg = settings.train
    work.mkdir(parents=True, exist_ok=True)
    ckpt_path, work_metrics = work / "checkpoint.pt", work / "metrics.jsonl"
    plan = plan_chunks(
        len(targets.nouns) - 1,
        loader.rows_per_epoch,
        tcfg.batch_size,
        tcfg.chunk_scale,
        tcfg.epochs,
    )
    identity = sha256_json(
        {
            "model": settings.model,
            "noise": settings.noise.to_dict(),
            "train": asdict(tcfg),
            "targets": targets.to_dict(),
            "meta": dict(meta),
        }
    )
    torch.manual_seed(tcfg.seed)
    model = build_model(settings, targets, loader.dim, device)
    optimizer = make_optimizer(model, tcfg, device)
    state = _resume(ckpt_path, identity, model, optimizer, device, plan.chunks)
    metrics = _truncate_metrics(work_metrics, state.chunk)
    if device.type == "cuda":
        enable_tf32()
    run = _Run(
        settings, targets, loader, device, meta, plan, identity, model, optimizer, state,
        ckpt_path, work_metrics, lookup=torch.from_numpy(targets.lookup()),
        table=torch.from_numpy(targets.tokens), gen=torch.Generator(device=device),
        amp=use_amp(tcfg.amp, device), forward=compiled(model) if compile else model,
        metrics=metrics,
    )  # fmt: skip
    _log_plan(run)
    model.train()
    return run


CHECKPOINT_KEYS = {"identity", "state_dict", "optimizer", "pending_grads", "state"}


def _resume(
    ckpt_path: Path,
    identity: str,
    model: ObjectDecoder,
    optimizer: Any,
    device: torch.device,
    chunks: int,
) -> TrainState:
    """Load `ckpt_path` into the model and optimizer if it is of this run; return its state.

    An unreadable checkpoint (torn, truncated, damaged) is renamed aside and logged, and the
    run starts afresh.
    """
    if not ckpt_path.exists():
        return TrainState()
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if not isinstance(ckpt, dict) or not ckpt.keys() >= CHECKPOINT_KEYS:
            raise ValueError("not a training checkpoint")
    except Exception as e:  # zip, pickle, EOF and torch errors alike: the file is unusable
        aside = ckpt_path.with_name(f"{ckpt_path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(ckpt_path, aside)
        log.warning("%s is unreadable (%s: %s); moved it to %s and starting afresh",
                    ckpt_path, type(e).__name__, e, aside)  # fmt: skip
        return TrainState()
    if ckpt["identity"] != identity:
        log.info("ignoring %s: it belongs to other settings or data", ckpt_path)
        return TrainState()
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    for p, g in zip(model.parameters(), ckpt["pending_grads"] or [], strict=False):
        p.grad = g.to(device)
    state = ckpt["state"]
    log.info("resuming from %s after chunk %d of %d", ckpt_path, state.chunk, chunks)
    return state


def _log_plan(run: _Run) -> None:
    """Log the decoder's size and the chunk plan."""
    tcfg, plan, targets = run.settings.train, run.plan, run.targets
    log.info(
        "decoder %s: %s parameters; %d chunks of %d batches of %d (accum %d, %d batches per "
        "epoch, %d target nouns, V=%d, Cmax=%d) on %s",
        run.model.cfg.to_dict(),
        f"{parameter_count(run.model.cfg):,}",
        plan.chunks,
        plan.chunk_batches,
        tcfg.batch_size,
        tcfg.accum,
        plan.epoch_batches,
        len(targets.nouns) - 1,
        targets.vocab_size,
        targets.max_tokens,
        run.device,
    )


def _train_chunk(run: _Run, batches: Iterator[TargetBatch], progress_seconds: float) -> _ChunkSums:
    """Train one chunk of `batches` (prepared, from the run's data position on): re-seed, set
    its learning rate, run its raw batches (and, at the end of the run, step an unfinished
    accumulation with the mean of what there is)."""
    tcfg, plan, state, chunk = run.settings.train, run.plan, run.state, run.state.chunk
    torch.manual_seed(chunk_seed(tcfg.seed, chunk))
    run.gen.manual_seed(chunk_seed(tcfg.seed, chunk) + 1)
    lr = cosine_lr(tcfg.lr, chunk, plan.chunks)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    sums = torch.zeros(5, device=run.device, dtype=torch.float64)
    acc = _ChunkSums(sums, torch.zeros((), device=run.device), lr)
    start = last_report = time.perf_counter()
    for i in range(plan.chunk_batches):
        _train_batch(run, next(batches), acc)
        now = time.perf_counter()
        if now - last_report >= progress_seconds:
            last_report = now
            rate = acc.samples / (now - start)
            left = (plan.total_batches - state.micro) * tcfg.batch_size / rate
            log.info(
                "chunk %d/%d: batch %d/%d, %.0f samples/s, ETA %s",
                chunk + 1,
                plan.chunks,
                i + 1,
                plan.chunk_batches,
                rate,
                format_eta(left),
            )
    if state.chunk + 1 == plan.chunks and state.micro % tcfg.accum:
        pending = state.micro % tcfg.accum
        for p in run.model.parameters():
            if p.grad is not None:
                p.grad.mul_(tcfg.accum / pending)
        _optimizer_step(run, acc)
    acc.seconds = time.perf_counter() - start
    return acc


def _train_batch(run: _Run, batch: TargetBatch, acc: _ChunkSums) -> None:
    """Forward and backward one prepared batch with noise; step when an accumulation is
    complete."""
    tcfg = run.settings.train
    batch = batch.to(run.device)
    noisy = apply_noise(batch.embedding, run.settings.noise, run.gen)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.amp):
        logits = run.forward(noisy[batch.rows], batch.tokens[:, :-1])
    loss_sum, count, correct = token_loss(logits.float(), batch)
    (loss_sum / count / tcfg.accum).backward()
    acc.sums[:3] += torch.stack([loss_sum.detach(), count, correct]).double()
    acc.samples += batch.embedding.shape[0]
    run.state.micro += 1
    if run.state.micro % tcfg.accum == 0:
        _optimizer_step(run, acc)


def _optimizer_step(run: _Run, acc: _ChunkSums) -> None:
    """Clip, step and zero the gradients; count the step and its gradient norm into `acc`."""
    norm = _step(run.model, run.optimizer, run.settings.train.grad_clip)
    acc.sums[3] += norm
    acc.sums[4] += 1
    acc.gn_max = torch.maximum(acc.gn_max, norm)


def _end_chunk(run: _Run, acc: _ChunkSums) -> dict[str, Any]:
    """Count a trained chunk into the state; append its metrics line and log it."""
    tcfg, plan, state = run.settings.train, run.plan, run.state
    alpha = 0.5 ** (1 / EWA_HALF_LIFE_CHUNKS)
    loss, count, correct, gn, steps = acc.sums.tolist()
    accuracy = correct / count
    state.smoothed_accuracy = (
        accuracy
        if state.smoothed_accuracy is None
        else alpha * state.smoothed_accuracy + (1 - alpha) * accuracy
    )
    state.chunk += 1
    state.samples += acc.samples
    state.elapsed += acc.seconds
    rate = acc.samples / acc.seconds
    eta = (plan.chunks - state.chunk) * plan.chunk_batches * tcfg.batch_size / rate
    last = {
        "chunk": state.chunk,
        "chunks": plan.chunks,
        "epoch": round(state.samples / max(run.loader.rows_per_epoch, 1), 4),
        "samples": state.samples,
        "loss": loss / count,
        "accuracy": accuracy,
        "accuracy_smoothed": state.smoothed_accuracy,
        "lr": acc.lr,
        "grad_norm": gn / steps if steps else None,
        "grad_norm_max": float(acc.gn_max) if steps else None,
        "optimizer_steps": int(steps),
        "samples_per_s": rate,
        "seconds": acc.seconds,
        "elapsed_s": state.elapsed,
        "eta_s": eta,
        "device": device_name(run.device),
    }
    run.metrics.append(last)
    _write_metrics(run.work_metrics, run.metrics)
    log.info(
        "chunk %d/%d | loss %.4f | token acc %.4f (smoothed %.4f) | lr %.3g | grad %.3g | "
        "%.0f samples/s | elapsed %s | ETA %s",
        state.chunk,
        plan.chunks,
        last["loss"],
        accuracy,
        state.smoothed_accuracy,
        acc.lr,
        last["grad_norm"] or float("nan"),
        rate,
        format_eta(state.elapsed),
        format_eta(eta),
    )
    return last


def _finish(
    run: _Run,
    last: Mapping[str, Any],
    decoder_path: str | Path,
    metrics_path: str | Path,
    heldout: Loader | None,
    prefetch_batches: int,
) -> dict[str, Any]:
    """Evaluate the held-out rows, write the decoder and the metrics, drop the checkpoint."""
    summary = {**last, "parameters": parameter_count(run.model.cfg)}
    if heldout is not None:
        summary["heldout"] = evaluate(run.model, heldout, run.targets, run.device, prefetch_batches)
        log.info(
            "held-out rows: %d, loss %.4f, token accuracy %.4f (no noise)",
            summary["heldout"]["rows"],
            summary["heldout"]["loss"],
            summary["heldout"]["accuracy"],
        )
    save_decoder(decoder_path, run.model, run.targets, run.meta, run.settings, summary=summary)
    _write_metrics(Path(metrics_path), _metrics_upto(run.metrics, run.state.chunk))
    run.ckpt_path.unlink(missing_ok=True)
    return summary


@torch.no_grad()
def evaluate(
    model: ObjectDecoder,
    loader: Loader,
    targets: TargetTokens,
    device: torch.device,
    prefetch_batches: int = 0,
) -> dict[str, Any]:
    """Loss and teacher-forced token accuracy (eval mode, no noise) over one epoch of `loader`
    (`prefetch_batches`: as train_decoder's)."""
    was_training = model.training
    model.eval()
    lookup, table = torch.from_numpy(targets.lookup()), torch.from_numpy(targets.tokens)
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    rows = 0
    prepared = prepare_batches(loader.epoch(0), lookup, table, device)
    with ReadAhead(prepared, prefetch_batches) as batches:
        for host_batch in batches:
            batch = host_batch.to(device)
            logits = model(batch.embedding[batch.rows], batch.tokens[:, :-1])
            sums += torch.stack(token_loss(logits.float(), batch)).double()
            rows += batch.embedding.shape[0]
    model.train(was_training)
    loss, count, correct = sums.tolist()
    return {"rows": rows, "loss": loss / max(count, 1e-12), "accuracy": correct / max(count, 1e-12)}


def run_training(
    mix_path: str | Path,
    vocab_path: str | Path,
    params: Mapping[str, Any],
    decoder_path: str | Path,
    metrics_path: str | Path,
    device: torch.device,
    run: str,
    runtime: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train run `run` from its mix manifest and vocabulary (what rule train_decoder does).

    `params` is the run's config (embedder, threshold, mix, model, noise, train), `runtime`
    its train section's runtime-only keys (checkpoint_every; the schema's default if absent).
    The targets are the vocabulary's nouns, tokenised with the embedder's tokenizer; the
    unfinished state lives in `{decoder folder}/work/`. The mix's held-out rows (prompt and
    caption templates kept out of training) are evaluated at the end. `threads`: the job's CPU
    threads, shared between torch and the loader's reader processes.
    """
    from novic.dictionary import read_nouns
    from novic.loader import EmbeddingLoader
    from novic.mix import Mix, MixSource, read_mix

    settings = RunSettings.from_config(params)
    runtime = defaults("runs.*.train") | dict(runtime or {})
    if threads:
        torch.set_num_threads(max(1, threads - settings.train.loader_workers))
    mix = read_mix(mix_path, vocab=vocab_path)
    nouns = read_nouns(vocab_path)
    tokenizer = load_tokenizer(mix.embedder_spec)
    targets = build_target_tokens(
        tokenizer, nouns.column("id").to_pylist(), nouns.column("target_noun").to_pylist()
    )
    t = settings.train
    loader = EmbeddingLoader(
        mix,
        batch_size=t.batch_size,
        seed=t.seed,
        buffer_rows=t.buffer_rows,
        num_workers=t.loader_workers,
        pin_memory=device.type == "cuda",
    )
    meta = {
        "run": run,
        "embedder": mix.embedder,
        "embedder_spec": mix.embedder_spec,
        "embedder_sha256": mix.embedder_sha256,
        "embed_dim": mix.dim,
        "threshold": mix.threshold,
        "vocab_sha256": mix.vocab_sha256,
        "mix": {s.name: {"weight": s.weight, "rows": s.rows} for s in mix.sources},
        "config": dict(params),
    }
    log.info(
        "run %s: %s rows per epoch from %s; %d target nouns -> V=%d compact tokens, Cmax=%d",
        run,
        f"{loader.rows_per_epoch:,}",
        ", ".join(f"{s.name} x{s.weight:g}" for s in mix.sources),
        len(targets.nouns) - 1,
        targets.vocab_size,
        targets.max_tokens,
    )
    heldout = None
    sources = [MixSource(name, 1.0, [s]) for name, s in mix.heldout.items() if s.rows]
    if sources:  # a small caption set may hold none out
        held = Mix(**{**vars(mix), "sources": sources, "heldout": {}})
        heldout = EmbeddingLoader(held, batch_size=t.batch_size, drop_last=False)
    decoder_path = Path(decoder_path)
    return train_decoder(
        loader, targets, settings, decoder_path, metrics_path, decoder_path.parent / "work",
        device, meta, checkpoint_every=runtime["checkpoint_every"], heldout=heldout,
        compile=runtime["compile"], prefetch_batches=runtime["prefetch_batches"],
    )  # fmt: skip


def _step(model: torch.nn.Module, optimizer: Any, clip: float) -> torch.Tensor:
    """Clip (if clip > 0), step, zero the gradients; return the pre-clip gradient norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
    else:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm.detach().float()


def _save_training(
    path: Path,
    model: ObjectDecoder,
    optimizer: Any,
    state: TrainState,
    identity: str,
    meta: Mapping[str, Any],
) -> None:
    grads = [p.grad for p in model.parameters()]
    pending = (
        None
        if all(g is None for g in grads)
        else [g.detach().cpu() if g is not None else None for g in grads]
    )
    with atomic_path(path, sync=True) as tmp:
        torch.save(
            {
                "identity": identity,
                "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "pending_grads": pending,
                "state": state,
                "meta": dict(meta),
            },
            tmp,
        )


def bare_step_rate(
    model: ObjectDecoder,
    batches: Sequence[TargetBatch],
    cfg: TrainSettings,
    steps: int,
    device: torch.device,
    compile: bool = False,
) -> dict[str, float]:
    """Samples/s of the bare forward/backward/step on batches already on the device.

    The same work per raw batch as the training loop (cycling through `batches`, so that their
    mix of target counts is the data's) without the data path (loader, lookup, noise) and the
    bookkeeping: "wall" per wall-clock second, "cpu" per CPU second of this
    process (which other processes' load hardly changes).
    """
    optimizer = make_optimizer(model, cfg, device)
    on_device = [b.to(device) for b in batches]
    amp = use_amp(cfg.amp, device)
    forward = compiled(model) if compile else model
    model.train()

    def one(i: int) -> None:
        batch = on_device[i % len(on_device)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = forward(batch.embedding[batch.rows], batch.tokens[:, :-1])
        loss_sum, count, _ = token_loss(logits.float(), batch)
        (loss_sum / count / cfg.accum).backward()

    for i in range(len(on_device)):  # warm-up: every shape once (compiles, if compiling)
        one(i)
    _step(model, optimizer, cfg.grad_clip)
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        one(i)
        if (i + 1) % cfg.accum == 0:
            _step(model, optimizer, cfg.grad_clip)
    synchronize(device)
    samples = sum(on_device[i % len(on_device)].embedding.shape[0] for i in range(steps))
    return {
        "wall": samples / (time.perf_counter() - wall),
        "cpu": samples / max(time.process_time() - cpu, 1e-9),
    }
