"""A small random decoder checkpoint for the tiny CLIP (tests of classify and evaluate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from novic.checkpoint import save_decoder
from novic.embedders import TINY_CONFIG, parse_spec, spec_sha256
from novic.settings import RunSettings
from novic.tokens import build_target_tokens, load_tokenizer
from novic.train import build_model

TINY_SPEC = {"tiny": {"seed": 0}}
NOUNS = [
    "cat", "dog", "astronaut", "coffee", "rocket", "woman", "cup", "apple", "sandal", "shirt",
    "trouser", "bag", "dress", "coat", "sneaker", "pullover", "ankle boot", "t shirt", "top",
]  # fmt: skip
MODEL = {"layers": 1, "hidden": 32, "heads": 2, "prefix_tokens": 2}


def write_tiny_decoder(path: Path, nouns: Sequence[str] = NOUNS, seed: int = 0) -> Path:
    """A random decoder over `nouns` (dictionary ids 1..N) tokenised for the tiny CLIP."""
    targets = build_target_tokens(
        load_tokenizer(TINY_SPEC), list(range(1, len(nouns) + 1)), list(nouns)
    )
    settings = RunSettings.from_config({"model": MODEL})
    torch.manual_seed(seed)
    model = build_model(settings, targets, TINY_CONFIG["embed_dim"], torch.device("cpu"))
    meta = {
        "run": "tiny_test",
        "embedder": "tiny",
        "embedder_spec": TINY_SPEC,
        "embedder_sha256": spec_sha256(parse_spec(TINY_SPEC)),
        "embed_dim": TINY_CONFIG["embed_dim"],
        "threshold": 9,
        "config": {"embedder": "tiny", "threshold": 9, "model": MODEL},
    }
    save_decoder(path, model, targets, meta, settings, summary={"chunk": 1})
    return path
