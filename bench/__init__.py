"""Benchmarks: `python -m bench [NAME ...] [--devices cpu,cuda]` (or `make bench`).

Each module bench/NAME.py defines `run() -> dict[str, object]`: flat, JSON-able results of one
measurement on this machine. Speeds are reported next to the raw operation they are compared to
(measured in the same run), so the figures mean something on any machine. The harness prints
one table per module and writes results/bench/NAME.json. Benchmarks are never run by pytest.

A module that measures on a GPU does so where CUDA is available and says so where it is not
(`gpu()` below); `--devices cuda` skips the CPU measurements (`wants("cpu")` is then false). A
module with `NEEDS = ("a", "b")` runs after those and gets their results: `run(results)`.
"""

from __future__ import annotations

DEVICES = {"cpu", "cuda"}  # set by the harness from --devices


def wants(device: str) -> bool:
    """Whether this bench run measures on `device` ("cpu" or "cuda")."""
    return device in DEVICES


def gpu() -> str | None:
    """The CUDA GPU's name where one is available and asked for, else None."""
    import torch

    if not wants("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def no_gpu_reason() -> str:
    """Why the GPU measurements did not run."""
    return "not asked for (--devices)" if not wants("cuda") else "none available (no CUDA)"
