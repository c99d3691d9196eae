"""The decoder file (decoder.pt): written at the end of training, read by inference.

It is a safetensors file: the model weights as tensors, and in the file's string metadata the
format tag (`format`) and one JSON document (`record`) with the model hyperparameters, the
target nouns and their token map, the noise and train settings, `meta` (embedder spec, run
config, data identity) and the training summary. Reading it runs no code from the file.

The old format (novic.decoder/1, a pickle written by torch.save) can run arbitrary code when
read, so it is refused unless asked for by name: `load_decoder(path, allow_pickle=True)` (then
torch's restricted `weights_only` unpickler is tried first), or converted once with
`convert_pickled_decoder`, which uses the restricted unpickler only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from novic.io import atomic_path
from novic.model import ObjectDecoder
from novic.settings import DecoderSettings
from novic.tokens import TargetTokens

if TYPE_CHECKING:
    from novic.settings import RunSettings

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "novic.decoder/2"
PICKLED_FORMAT = "novic.decoder/1"
RECORD_KEYS = ("model", "targets", "noise", "train", "meta", "summary")
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip container, a bare pickle


class CheckpointError(ValueError):
    """A decoder file that cannot be read; the message names the file and what is wrong."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"a {type(value).__name__} value ({value!r}) cannot be stored as JSON")


def write_record(
    path: str | Path, state_dict: Mapping[str, torch.Tensor], record: Mapping[str, Any]
) -> None:
    """Write weights and a record (RECORD_KEYS, JSON-compatible) as a decoder file, atomically."""
    from safetensors.torch import save_file

    try:
        text = json.dumps({k: record[k] for k in RECORD_KEYS}, default=_json_default)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot write the decoder record: {exc}") from exc
    # safetensors refuses tensors that share memory: give each its own contiguous copy
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": CHECKPOINT_FORMAT, "record": text})


def save_decoder(
    path: str | Path,
    model: ObjectDecoder,
    targets: TargetTokens,
    meta: Mapping[str, Any],
    settings: RunSettings,
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Write a decoder checkpoint atomically: everything needed to decode with it."""
    record = {
        "model": model.cfg.to_dict(),
        "targets": targets.to_dict(),
        "noise": settings.noise.to_dict(),
        "train": asdict(settings.train),
        "meta": dict(meta),
        "summary": dict(summary or {}),
    }
    write_record(path, model.state_dict(), record)


def _is_pickle(path: Path) -> bool:
    """Whether the file is torch.save's zip or a bare pickle (not a safetensors file).

    A safetensors file starts with its header's length (8 bytes, little-endian) and then the
    JSON header, so a length whose low byte is 0x80 looks like a pickle's first byte: the
    header's opening brace tells the two apart.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the decoder checkpoint: {exc}") from exc
    if head[8:9] == b"{":
        return False
    return head.startswith(_PICKLE_MAGIC)


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The record and the (CPU) tensors of a decoder file in CHECKPOINT_FORMAT."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable decoder checkpoint (a {CHECKPOINT_FORMAT} safetensors file "
            f"was expected; truncated or another kind of file?): {exc}"
        ) from exc
    fmt = header.get("format")
    if fmt != CHECKPOINT_FORMAT:
        got = f"format {fmt!r}" if fmt else "no format tag"
        raise CheckpointError(f"{path}: a safetensors file with {got}, not {CHECKPOINT_FORMAT}")
    try:
        record = json.loads(header.get("record", ""))
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path}: the metadata key 'record' is not valid JSON: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: the metadata key 'record' is not a JSON object")
    return record, tensors


def _read_pickle(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An old pickled decoder file: torch's restricted unpickler first, then the full one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as safe_exc:  # not plain tensors and containers: trusted by the caller
        log.warning(
            "%s: the restricted unpickler refused it (%s); unpickling it fully, as asked",
            path,
            safe_exc,
        )
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot unpickle the decoder checkpoint: {exc}") from exc
    return _split_pickled(path, ckpt)


def _split_pickled(path: Path, ckpt: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if not isinstance(ckpt, dict) or ckpt.get("format") != PICKLED_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a {PICKLED_FORMAT} decoder pickle (found {found!r})")
    tensors = ckpt.get("state_dict")
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{path}: the pickled checkpoint has no 'state_dict'")
    return {k: v for k, v in ckpt.items() if k not in ("format", "state_dict")}, tensors


def _check_record(path: Path, record: Mapping[str, Any]) -> None:
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise CheckpointError(f"{path}: the decoder record lacks {', '.join(missing)}")
    wrong = [k for k in RECORD_KEYS if not isinstance(record[k], dict)]
    if wrong:
        raise CheckpointError(f"{path}: in the decoder record, {', '.join(wrong)} must be objects")


def load_decoder(
    path: str | Path, device: str | torch.device = "cpu", allow_pickle: bool = False
) -> tuple[ObjectDecoder, TargetTokens, dict[str, Any]]:
    """Read a decoder file: the model (in eval mode), its target tokens and the whole record.

    The record is a dict with `format`, RECORD_KEYS and `state_dict` (CPU tensors). Raises
    CheckpointError naming the file for anything unreadable. `allow_pickle` reads the old
    pickled format, which can run code hidden in the file: only for files you trust.
    """
    path = Path(path)
    if _is_pickle(path):
        if not allow_pickle:
            raise CheckpointError(
                f"{path}: a pickled decoder checkpoint (the old {PICKLED_FORMAT} format); "
                "unpickling can run code hidden in the file, so it is not read. Convert it once "
                "with `novic convert-checkpoint OLD NEW` (plain tensors and data only), or, for "
                "a file you trust, pass allow_pickle=True (novic classify "
                "--trust-pickled-checkpoint)"
            )
        record, tensors = _read_pickle(path)
        fmt = PICKLED_FORMAT
    else:
        record, tensors = _read_safetensors(path)
        fmt = CHECKPOINT_FORMAT
    _check_record(path, record)
    try:
        cfg = DecoderSettings(**record["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad model hyperparameters in the record: {exc}") from exc
    try:
        targets = TargetTokens.from_dict(record["targets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad target tokens in the record: {exc}") from exc
    model = ObjectDecoder(cfg)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the model: {exc}") from exc
    model.to(device).eval()
    return model, targets, {**record, "format": fmt, "state_dict": tensors}


def convert_pickled_decoder(src: str | Path, dst: str | Path) -> None:
    """Rewrite an old pickled decoder file in CHECKPOINT_FORMAT with torch's restricted
    unpickler only (plain tensors and containers): a file carrying code is refused."""
    src = Path(src)
    if not _is_pickle(src):
        raise CheckpointError(f"{src}: not a pickled decoder checkpoint (nothing to convert)")
    try:
        ckpt = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{src}: the restricted unpickler refused it (it holds more than tensors and plain "
            f"data): {exc}"
        ) from exc
    record, tensors = _split_pickled(src, ckpt)
    _check_record(src, record)
    write_record(dst, tensors, record)
    load_decoder(dst)  # the new file reads back
