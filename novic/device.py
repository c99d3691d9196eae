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


def enable_tf32() -> None:
    """Let float32 matrix products and convolutions use TF32 on a GPU (as the reference trains:
    float32 weights, TF32 tensor cores); no effect on a CPU."""
    import torch

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9; the allow_tf32 flags are deprecated
        matmul.fp32_precision = conv.fp32_precision = "tf32"
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


def device_name(device: torch.device) -> str:
    """What a job ran on, for its records: "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    import torch

    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
