"""Torch device helpers: picking a job's device and waiting for its queued work."""

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
