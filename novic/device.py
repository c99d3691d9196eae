"""Torch device helpers: picking a job's device, checking a named one, waiting for queued work."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: importing this module stays light
    import torch


def pick_device(gpu_requested: int | float | None) -> torch.device:
    """cuda when the job was given a GPU (resources gpu > 0) and one is visible, else cpu."""
    import torch

    if gpu_requested and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' or None: cuda when available, else cpu."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a cuda device (before reading a clock); no-op elsewhere."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_device(device: str | torch.device | None) -> torch.device:
    """The torch device for `device` ('auto', 'cpu', 'cuda', 'cuda:N', ...), or a ValueError
    naming it when it is malformed or this machine lacks it."""
    import torch

    try:
        dev = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device {device!r}: not a device name (auto, cpu, cuda, cuda:N)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: CUDA is not available on this machine (no GPU visible, or "
                "torch built without CUDA); use device cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r}: not supported here (auto, cpu, cuda, cuda:N, mps)")
    return dev
