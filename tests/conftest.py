"""Shared fixtures: a copy of the workflow whose noun stage has run once per session, one torch
thread for modules of tiny models, and the tiny random CLIP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from project import copy_project, noun_targets, snakemake

from novic.embedders import Embedder, load_embedder


@pytest.fixture(scope="session")
def noun_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy whose noun stage (dictionary and the test vocabularies) has run once."""
    workdir = copy_project(tmp_path_factory.mktemp("nouns"))
    snakemake(workdir, ["results/nouns/dictionary.parquet", *noun_targets((9, 12))])
    return workdir


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared machine: one torch thread is faster and steadier than two.
    Modules ask for it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> Embedder:
    """The project's tiny random CLIP (embedders.tiny, seed 0)."""
    return load_embedder({"tiny": {"seed": 0}})
