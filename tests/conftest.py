"""Shared fixtures: a copy of the workflow whose noun stage has run once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from project import copy_project, noun_targets, snakemake


@pytest.fixture(scope="session")
def noun_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy whose noun stage (dictionary and the test vocabularies) has run once."""
    workdir = copy_project(tmp_path_factory.mktemp("nouns"))
    snakemake(workdir, ["results/nouns/dictionary.parquet", *noun_targets((9, 12))])
    return workdir
