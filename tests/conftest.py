"""Shared fixtures: a copy of the workflow whose noun stage has run once per session, one torch
thread for modules of tiny models, the tiny random CLIP, and a small trained image tower."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from project import copy_project, noun_targets, snakemake

from novic.embedders import Embedder, load_embedder

REPO = Path(__file__).resolve().parent.parent


def load_tool(name: str) -> ModuleType:
    """tools/NAME.py, imported from its path once (tools/ is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it runs
        spec.loader.exec_module(module)
    return sys.modules[name]


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


@dataclass(frozen=True)
class SmallTower:
    """An image tower checkpoint (`path`) trained with `settings` (a full locked_text section)."""

    settings: dict[str, Any]
    path: Path

    @property
    def spec(self) -> dict[str, Any]:
        """The locked_text embedder spec of this tower."""
        return {"locked_text": self.settings, "checkpoint": str(self.path)}


def small_tower_settings(**changes: Any) -> dict[str, Any]:
    """Image tower settings small enough to train in seconds (3000 train images, one epoch)."""
    from novic.settings import ImageTowerSettings

    classes = str(REPO / "resources" / "class_names" / "fashion_mnist.txt")
    values = {"train_images": 3000, "epochs": 1, "classes": classes, **changes}
    return ImageTowerSettings.from_config(values).to_dict()


def train_tower(settings: dict[str, Any], path: Path) -> SmallTower:
    """Train an image tower with `settings` into `path`, the caller running torch on one thread
    (the tower pins itself to one thread anyway); the caller's thread count is restored."""
    from novic.towers import save_tower, train_image_tower

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        save_tower(*train_image_tower(settings), path)
    finally:
        torch.set_num_threads(before)
    return SmallTower(settings, path)


@pytest.fixture(scope="session")
def small_tower(tmp_path_factory: pytest.TempPathFactory) -> SmallTower:
    """An image tower trained on the first 3000 Fashion-MNIST train images for one epoch (~3 s)."""
    path = tmp_path_factory.mktemp("tower") / "image_tower.safetensors"
    return train_tower(small_tower_settings(), path)


@pytest.fixture(scope="session")
def locked_embedder(small_tower: SmallTower) -> Embedder:
    """The locked_text embedder (MiniLM text tower) with the small image tower."""
    return load_embedder(small_tower.spec)


@pytest.fixture(scope="session")
def paper_dictionary():
    """The noun dictionary of the schema's default `nouns` section (the paper config), built
    once per session (~30 s) from Debian's WordNet; skipped where wordnet-base is missing."""
    import contextlib

    from novic.nouns import extract_dictionary
    from novic.schema import defaults

    if not Path("/usr/share/wordnet").is_dir():
        pytest.skip("Debian's wordnet-base is not installed (make test installs it)")
    with contextlib.chdir(REPO):  # the section's paths are relative to the project root
        table, _ = extract_dictionary(defaults("nouns"))
    return table
