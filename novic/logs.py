"""Logging set-up for pipeline scripts: everything a job prints goes to its log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def log_to(path: str | Path, level: int = logging.INFO) -> None:
    """Send logging, warnings, progress bars and uncaught tracebacks to the file at `path`."""
    stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the job)
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=level, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    logging.captureWarnings(True)
