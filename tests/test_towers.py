"""novic.towers: the offline embedder's image tower (reproducible training on the train split
only, preprocessing of any image, zero-shot quality) and its WordPiece target tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SmallTower, small_tower_settings
from PIL import Image

from novic import towers
from novic.articles import with_article
from novic.datasets import _find_idx, read_idx
from novic.embedders import Embedder
from novic.tokens import build_target_tokens, load_tokenizer

BLACK = (0 - towers.PIXEL_MEAN) / towers.PIXEL_STD  # a black pixel after normalisation


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(settings: dict, path: Path) -> Path:
    towers.save_tower(*towers.train_image_tower(settings), path)
    return path


def held_out(root: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` images and labels of Fashion-MNIST's test split."""
    images = read_idx(_find_idx(Path(root), "t10k-images-idx3-ubyte"))[:n]
    return images, read_idx(_find_idx(Path(root), "t10k-labels-idx1-ubyte"))[:n]


def test_training_is_reproducible_whatever_the_callers_threads(
    small_tower: SmallTower, tmp_path: Path
) -> None:
    """The fixture trained with one caller thread; two threads give the same bytes, and the
    caller's thread count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        again = train(small_tower.settings, tmp_path / "again.safetensors")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert sha256(again) == sha256(small_tower.path)


def test_another_seed_gives_another_tower(small_tower: SmallTower, tmp_path: Path) -> None:
    other = train(small_tower_settings(seed=1), tmp_path / "seed1.safetensors")
    assert sha256(other) != sha256(small_tower.path)
    _, meta = towers.load_tower(other)
    _, meta0 = towers.load_tower(small_tower.path)
    assert meta["weights_sha256"] != meta0["weights_sha256"]
    assert meta["train_data"] == meta0["train_data"]  # same images, other weights


def test_trained_on_the_train_split_only(small_tower: SmallTower) -> None:
    n, root = small_tower.settings["train_images"], small_tower.settings["root"]
    _, meta = towers.load_tower(small_tower.path, small_tower.settings)
    train_sha = towers.data_sha256(*towers.training_split(root, n))
    assert meta["train_data"] == {"split": "train", "rows": n, "sha256": train_sha}
    assert train_sha != towers.data_sha256(*held_out(root, n))
    assert meta["settings"] == small_tower.settings
    assert meta["text_sha256"] == towers.text_weights_sha256("minilm")


def test_zero_shot_beats_chance(small_tower: SmallTower, locked_embedder: Embedder) -> None:
    """The small tower (3000 train images, one epoch) classifies 1000 test images zero-shot,
    through the PIL path, over "a photo of {article} {class}." captions. Measured: 59.7% at the
    default logit scale of 100 (72.7% with a learned scale, which gives a smaller gap); chance
    is 10%."""
    images, labels = held_out(small_tower.settings["root"], 1000)
    classes = towers.read_class_names(small_tower.settings["classes"])
    captions = locked_embedder.encode_texts([f"a photo of {with_article(c)}." for c in classes])
    embs = locked_embedder.encode_images([Image.fromarray(im) for im in images], batch_size=256)
    accuracy = float(((embs @ captions.T).argmax(1) == labels).mean())
    assert accuracy > 0.5, accuracy
    # The modality gap that logit_scale 100 makes: about 85 degrees, as SigLIP B/16's 84.8.
    own = np.degrees(np.arccos(np.clip((embs * captions[labels]).sum(1), -1, 1)))
    assert 78 < own.mean() < 89, own.mean()


def test_fashion_mnist_images_are_only_normalised(small_tower: SmallTower) -> None:
    images, _ = held_out(small_tower.settings["root"], 8)
    for pixels in images:
        got = towers.preprocess_image(Image.fromarray(pixels))
        assert torch.equal(got, towers.normalise_pixels(pixels[None])[0])


@pytest.mark.parametrize("size", [(28, 28), (120, 120), (300, 100), (90, 400)])
def test_bright_backgrounds_are_inverted(size: tuple[int, int]) -> None:
    """A dark square on white becomes a light square on black, centred, aspect kept."""
    w, h = size
    pixels = np.full((h, w), 255, dtype=np.uint8)
    pixels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 20
    x = towers.preprocess_image(Image.fromarray(pixels))
    assert x.shape == (1, towers.IMAGE_SIDE, towers.IMAGE_SIDE)
    assert torch.allclose(x[0, [0, 0, -1, -1], [0, -1, 0, -1]], torch.tensor(BLACK))
    assert x[0, 14, 14].item() > (200 / 255 - towers.PIXEL_MEAN) / towers.PIXEL_STD  # the square


def image_in_mode(pixels: np.ndarray, mode: str) -> Image.Image:
    """A grayscale uint8 image as a PIL image of `mode` showing the same picture (RGBA opaque,
    P with a gray palette, I;16 scaled to 16 bits)."""
    if mode == "I;16":
        return Image.fromarray(pixels.astype(np.uint16) * 257)
    if mode == "P":
        image = Image.frombytes("P", pixels.shape[::-1], np.ascontiguousarray(pixels).tobytes())
        image.putpalette([v for i in range(256) for v in (i, i, i)])
        return image
    return Image.fromarray(pixels).convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16"])
@pytest.mark.parametrize("size", [(28, 28), (300, 100)])
def test_any_image_gives_a_unit_vector(
    small_tower: SmallTower, locked_embedder: Embedder, mode: str, size: tuple[int, int]
) -> None:
    images, _ = held_out(small_tower.settings["root"], 1)
    pixels = np.asarray(Image.fromarray(images[0]).resize(size, Image.Resampling.NEAREST))
    image = image_in_mode(pixels, mode)
    assert image.mode == mode and image.size == size
    emb = locked_embedder.encode_images([image])
    assert emb.shape == (1, 384) and emb.dtype == np.float32
    assert np.linalg.norm(emb[0]) == pytest.approx(1, abs=1e-5)
    assert towers.preprocess_image(image).equal(towers.preprocess_image(Image.fromarray(pixels)))


def test_16_bit_images_are_scaled_not_clipped(small_tower: SmallTower) -> None:
    images, _ = held_out(small_tower.settings["root"], 1)
    deep = Image.fromarray(images[0].astype(np.uint16) * 257)
    assert deep.mode == "I;16"
    assert torch.equal(
        towers.preprocess_image(deep), towers.preprocess_image(Image.fromarray(images[0]))
    )


def test_transparency_is_composited_onto_black() -> None:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere, but only the centre is opaque
    rgba[7:21, 7:21, 3] = 255
    x = towers.preprocess_image(Image.fromarray(rgba))
    assert x[0, 0, 0].item() == pytest.approx(BLACK)  # not inverted: the background is black
    assert x[0, 14, 14].item() == pytest.approx((1 - towers.PIXEL_MEAN) / towers.PIXEL_STD)


def test_wordpiece_target_tokens() -> None:
    """Target nouns tokenised with the text tower's WordPiece tokenizer end in [SEP] (compact 0);
    decoding gives the nouns back, except that WordPiece splits "t-shirt" at its hyphen."""
    tokenizer = load_tokenizer({"sentence": "minilm"})
    assert load_tokenizer({"locked_text": {}}).tokenizer.vocab == tokenizer.tokenizer.vocab
    nouns = ["ankle boot", "t-shirt", "dog"]
    t = build_target_tokens(tokenizer, [4, 9, 2], nouns)
    sep = tokenizer.tokenizer.sep_token_id
    assert t.raw_ids[0] == sep and tokenizer.tokenizer.convert_ids_to_tokens(sep) == "[SEP]"
    assert tokenizer.tokenizer.cls_token_id not in t.raw_ids  # no start token
    lengths = [3, 4, 2]  # ankle, boot / t, -, shirt / dog; each + [SEP]
    assert t.max_tokens == 4
    for row, n in enumerate(lengths, 1):
        assert t.tokens[row, n - 1] == 0 and (t.tokens[row, : n - 1] > 0).all()
        assert not t.tokens[row, n:].any()
    decoded = [t.decode(row, tokenizer) for row in t.tokens[1:]]
    assert decoded == ["ankle boot", "t - shirt", "dog"]
    assert [d.replace(" - ", "-") for d in decoded] == nouns
