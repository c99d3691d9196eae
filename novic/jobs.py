"""The one set-up of every pipeline job script: its log file, its runtime-only settings, its
device.

A script starts with `job = start(snakemake)`. Rules hand a job two params: `cfg`, what its
outputs depend on (`job.params`), and `runtime`, the dotted key path of the config section
whose runtime-only keys (novic.schema) the job may read (a list of paths: the first wins a key
several have). Those keys are never params, so changing a batch size or a timeout re-runs
nothing, and this module is the only place a job reads the config from.
The Snakemake object is used duck-typed: the library does not import Snakemake.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novic.schema import lookup, runtime_values

if TYPE_CHECKING:
    import torch


def log_to(path: str | Path, level: int = logging.INFO) -> None:
    """Send logging, warnings, progress bars and uncaught tracebacks to the file at `path`."""
    stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the job)
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=level, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    logging.captureWarnings(True)


@dataclass(frozen=True)
class Job:
    """What a job script needs besides its input and output paths."""

    params: Any  # the rule's `cfg` param: what the outputs depend on
    runtime: dict[str, Any]  # runtime-only settings of the rule's config section(s)
    threads: int
    gpus: int  # resources gpu (0 = none requested)

    def device(self) -> torch.device:
        """The job's torch device (cuda when it was given a GPU and one is visible)."""
        from novic.device import pick_device

        return pick_device(self.gpus)


def start(snakemake: Any, log: str | None = None) -> Job:
    """Set up logging into the rule's (first, or named) log file and describe the job."""
    log_to(log if log is not None else snakemake.log[0])
    rule_params = snakemake.params
    sections = rule_params.get("runtime", [])
    runtime: dict[str, Any] = {}
    for section in [sections] if isinstance(sections, str) else sections:
        values = runtime_values(lookup(snakemake.config, section), section)
        runtime |= {k: v for k, v in values.items() if k not in runtime}
    return Job(
        params=rule_params.get("cfg"),
        runtime=runtime,
        threads=int(snakemake.threads),
        gpus=int(snakemake.resources.get("gpu", 0)),
    )
