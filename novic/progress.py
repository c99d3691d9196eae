"""Progress reporting helpers: the ETA format of the log lines."""

from __future__ import annotations

import math


def format_eta(seconds: float) -> str:
    """'1h02m', '3m05s' or '12s'."""
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
