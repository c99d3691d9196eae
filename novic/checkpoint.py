"""The decoder file (decoder.pt): written at the end of training, read by inference.

It holds what decoding needs: the format tag, the model hyperparameters and weights, the target
nouns and their token map, the noise and train settings, `meta` (embedder spec, run config,
data identity) and the training summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from novic.io import atomic_path
from novic.model import ObjectDecoder
from novic.settings import DecoderSettings
from novic.tokens import TargetTokens

if TYPE_CHECKING:
    from novic.settings import RunSettings

CHECKPOINT_FORMAT = "novic.decoder/1"


def save_decoder(
    path: str | Path,
    model: ObjectDecoder,
    targets: TargetTokens,
    meta: Mapping[str, Any],
    settings: RunSettings,
    summary: Mapping[str, Any] | None = None,
) -> None:
    """Write a decoder checkpoint atomically: everything needed to decode with it."""
    with atomic_path(path) as tmp:
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "model": model.cfg.to_dict(),
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "targets": targets.to_dict(),
                "noise": settings.noise.to_dict(),
                "train": asdict(settings.train),
                "meta": dict(meta),
                "summary": dict(summary or {}),
            },
            tmp,
        )


def load_decoder(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[ObjectDecoder, TargetTokens, dict[str, Any]]:
    """Read a decoder file: the model (in eval mode), its target tokens and the whole record."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} file")
    model = ObjectDecoder(DecoderSettings(**ckpt["model"])).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, TargetTokens.from_dict(ckpt["targets"]), ckpt
