"""novic.embedders: spec parsing, loading without silent fallbacks, truncated-context encoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from novic.device import pick_device
from novic.embedders import (
    TINY_CONFIG,
    Embedder,
    EmbedderError,
    EmbedderLoadError,
    EmbedderSpec,
    load_embedder,
    parse_spec,
    spec_sha256,
)

TEXTS = [
    "a photo of a dog.",
    "a blurry photo of the large red fire truck and a small wooden chair and an apple.",
    "art.",
    "a photo of many tiny x-ray machines, next to the old lighthouse by the sea.",
    "a cropped photo of a cat and a dog.",
] * 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny CLIP registered as an open_clip architecture, to load checkpoints of it."""
    folder = tmp_path_factory.mktemp("configs")
    (folder / "novic-test-tiny.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder)
    return "novic-test-tiny"


def full_context(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """The reference: open_clip's own encode_text over the whole context."""
    with torch.no_grad():
        emb = embedder.model.encode_text(embedder.tokenize(texts))
    return torch.nn.functional.normalize(emb, dim=-1).numpy()


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ({"hub": "timm/ViT-B-16-SigLIP"}, "hub", "timm/ViT-B-16-SigLIP"),
        ({"hub": "hf-hub:apple/DFN5B-CLIP-ViT-H-14-378"}, "hub", "apple/DFN5B-CLIP-ViT-H-14-378"),
        ({"arch": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}, "pretrained", "ViT-B-32"),
        ({"arch": "ViT-B-32", "checkpoint": "/x/model.pt"}, "checkpoint", "ViT-B-32"),
        ({"arch": "ViT-B-32", "random": {"seed": 3}}, "random", "ViT-B-32"),
        ({"tiny": {"seed": 2}}, "tiny", "tiny"),
        ({"tiny": {}}, "tiny", "tiny"),
    ],
)
def test_parse_spec_forms(spec: dict, kind: str, name: str) -> None:
    parsed = parse_spec(spec, "k")
    assert (parsed.kind, parsed.name) == (kind, name)
    assert parse_spec(parsed.to_dict(), "k") == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"hub": "ViT-B-16-SigLIP"}, r"embedders\.bad\.hub: expected 'org/name'"),
        ({"hub": "timm/x", "arch": "ViT-B-32"}, r"embedders\.bad: .* is not an embedder spec"),
        ({"arch": "ViT-B-32"}, r"embedders\.bad: .* is not an embedder spec"),
        ({"arch": "ViT-B-32", "pretrained": "a", "checkpoint": "b"}, "is not an embedder spec"),
        ({"tiny": {"seed": -1}}, r"embedders\.bad\.tiny: expected \{seed: N\}"),
        ({"tiny": {"seed": 0, "width": 3}}, r"embedders\.bad\.tiny"),
        ("ViT-B-32", r"embedders\.bad: expected a mapping"),
    ],
)
def test_parse_spec_rejects_with_key(spec: object, message: str) -> None:
    with pytest.raises(EmbedderError, match=message):
        parse_spec(spec, "bad")  # type: ignore[arg-type]


def test_unknown_arch_and_tag_named() -> None:
    with pytest.raises(EmbedderError, match=r"embedders\.e\.arch: unknown open_clip architecture"):
        load_embedder({"arch": "ViT-Q-99", "random": {"seed": 0}}, key="e")
    with pytest.raises(EmbedderError, match=r"ViT-B-32 has no tag 'laion9'"):
        load_embedder({"arch": "ViT-B-32", "pretrained": "laion9"}, key="e")


@pytest.mark.parametrize(
    "spec",
    [{"hub": "timm/ViT-B-16-SigLIP"}, {"arch": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}],
)
def test_offline_without_weights_is_one_clear_error(spec: dict, tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError) as info:
        load_embedder(spec, cache_dir=str(tmp_path), offline=True, key="paper")
    message = str(info.value)
    assert message.startswith("embedders.paper: could not load ")
    assert parse_spec(spec).describe() in message
    for way in ("prepare_embedder", "checkpoint: /path/to/file.pt", "{tiny: {seed: 0}}"):
        assert way in message


def test_missing_or_broken_checkpoint_never_random(tiny_arch: str, tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError, match=r"checkpoint file .*nope\.pt does not exist"):
        load_embedder({"arch": tiny_arch, "checkpoint": str(tmp_path / "nope.pt")})
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(EmbedderLoadError, match="could not load"):
        load_embedder({"arch": tiny_arch, "checkpoint": str(broken)})


def test_checkpoint_loads_its_weights(tiny: Embedder, tiny_arch: str, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), path)
    loaded = load_embedder({"arch": tiny_arch, "checkpoint": str(path)})
    np.testing.assert_allclose(loaded.encode_texts(TEXTS), tiny.encode_texts(TEXTS), atol=1e-6)
    # The identity includes the file's content: other weights, other hash.
    before = spec_sha256(loaded.spec)
    torch.save(load_embedder({"tiny": {"seed": 1}}).model.state_dict(), path)
    assert spec_sha256(loaded.spec) != before


def test_tiny_is_seeded(tiny: Embedder) -> None:
    again = load_embedder({"tiny": {"seed": 0}})
    other = load_embedder({"tiny": {"seed": 1}})
    np.testing.assert_allclose(again.encode_texts(TEXTS), tiny.encode_texts(TEXTS), atol=1e-6)
    assert np.abs(other.encode_texts(TEXTS) - tiny.encode_texts(TEXTS)).max() > 0.1
    assert spec_sha256(again.spec) != spec_sha256(other.spec)
    assert tiny.info()["dim"] == tiny.dim == TINY_CONFIG["embed_dim"]


def test_truncated_context_equals_full_context(tiny: Embedder) -> None:
    assert tiny.truncates
    lengths = tiny.token_lengths(tiny.tokenize(TEXTS))
    assert int(lengths.max()) < tiny.context_length  # the cut really happens
    for batch_size in (1, 4, 64):
        emb = tiny.encode_texts(TEXTS, batch_size)
        assert np.abs(emb - full_context(tiny, TEXTS)).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-6)


def test_eos_pooled_causal_tower_truncates() -> None:
    cfg = {
        **TINY_CONFIG,
        "text_cfg": {**TINY_CONFIG["text_cfg"], "pool_type": "eos", "eos_id": 49407},
    }
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    embedder = Embedder(
        EmbedderSpec("tiny", "tiny"), model, open_clip.SimpleTokenizer(), None, torch.device("cpu")
    )
    assert embedder.truncates
    assert np.abs(embedder.encode_texts(TEXTS, 4) - full_context(embedder, TEXTS)).max() < 1e-5


def test_bidirectional_tower_keeps_full_context() -> None:
    """A SigLIP-like tower (no causal mask, last-token pooling) must not be truncated."""
    text_cfg = {**TINY_CONFIG["text_cfg"], "no_causal_mask": True, "pool_type": "last"}
    torch.manual_seed(0)
    model = open_clip.CustomTextCLIP(**{**TINY_CONFIG, "text_cfg": text_cfg})
    embedder = Embedder(
        EmbedderSpec("tiny", "tiny"), model, open_clip.SimpleTokenizer(), None, torch.device("cpu")
    )
    assert not embedder.truncates
    tokens = embedder.tokenize(TEXTS)
    assert (embedder.token_lengths(tokens) == tokens.shape[1]).all()
    assert np.abs(embedder.encode_texts(TEXTS, 4) - full_context(embedder, TEXTS)).max() < 1e-5
    # Truncating this tower would change its output: the full context is needed.
    with torch.no_grad():
        cut = model.encode_text(tokens[:, :20])
    full = full_context(embedder, TEXTS)
    assert np.abs(torch.nn.functional.normalize(cut, dim=-1).numpy() - full).max() > 1e-3


def test_images(tiny: Embedder) -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)) for _ in range(5)]
    images.append(Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)))  # grey
    emb = tiny.encode_images(images, batch_size=4)
    assert emb.shape == (6, tiny.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(tiny.encode_images(images[:2]), emb[:2], atol=1e-6)


def test_pick_device() -> None:
    assert pick_device(0).type == "cpu"
    assert pick_device(None).type == "cpu"
    assert pick_device(1).type == ("cuda" if torch.cuda.is_available() else "cpu")
