"""Run copies of the workflow through Snakemake's Python API (used by the workflow tests)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings,
    DAGSettings,
    OutputSettings,
    Quietness,
    ResourceSettings,
)

REPO = Path(__file__).resolve().parent.parent
TEST_CONFIG = "tests/config.yaml"
PROJECT_FILES = ["Snakefile", "config.yaml", "workflow", "resources", "presets", TEST_CONFIG]


def copy_project(dest: Path) -> Path:
    """Copy what a Snakemake run needs into `dest` (the library is used from the install)."""
    for name in PROJECT_FILES:
        src, dst = REPO / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    return dest


def snakemake(
    workdir: Path,
    targets: Iterable[str] = (),
    configfiles: Iterable[str] = (TEST_CONFIG,),
    dryrun: bool = False,
    cores: int = 2,
    resources: dict[str, int] | None = None,
) -> list[str]:
    """Run (or dry-run) the workflow in `workdir`; return the files the run (would) update."""
    updated: list[str] = []
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=cores, resources=resources or {}),
            config_settings=ConfigSettings(configfiles=[workdir / f for f in configfiles]),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        dag = workflow.dag(DAGSettings(targets=frozenset(targets)))
        dag.execute_workflow(executor="dryrun" if dryrun else "local", updated_files=updated)
    return updated


def override_files(workdir: Path, *overrides: dict) -> list[str]:
    """The config files of a run: TEST_CONFIG, then each override written to `workdir` as
    override{i}.yaml (later files win)."""
    files = [TEST_CONFIG]
    for i, override in enumerate(overrides):
        (workdir / f"override{i}.yaml").write_text(yaml.safe_dump(override))
        files.append(f"override{i}.yaml")
    return files


def noun_targets(thresholds: Iterable[int]) -> list[str]:
    return [f"results/vocab/ft{t}.parquet" for t in thresholds]


def merged_config(*files: Path) -> dict:
    """config.yaml with the given files merged over it, defaults filled in, as Snakemake does."""
    import yaml
    from snakemake.utils import update_config

    from novic.config import validate_config

    config: dict = {}
    for path in (REPO / "config.yaml", *files):
        update_config(config, yaml.safe_load(path.read_text()) or {})
    return validate_config(config, REPO / "novic/config.schema.yaml")
