"""CLIP embedders: specs from the config, loading without silent fallbacks, fast text encoding.

An embedder is named by a short config key (`embedders:` in the config) whose value is a spec:

    {hub: timm/ViT-B-16-SigLIP}                        an open_clip model on the Hugging Face hub
                                                       (as the reference writes it; "hf-hub:" ok)
    {arch: ViT-B-32, pretrained: laion2b_s34b_b79k}    an open_clip architecture + pretrained tag
    {arch: ViT-B-32, checkpoint: /path/model.pt}       an architecture + a local weights file
                                                       (.pt/.pth/.bin/.safetensors, or .npz for
                                                       big_vision SigLIP), for offline nodes
    {arch: ViT-B-32, random: {seed: 0}}                an architecture with random weights, on
                                                       purpose (speed benchmarks only)
    {tiny: {seed: 0}}                                  this project's small random CLIP (fast
                                                       tests)
    {sentence: minilm}                                 a text-only sentence encoder (minilm =
                                                       all-MiniLM-L6-v2 from its package, else a
                                                       sentence-transformers folder)
    {locked_text: {...}, checkpoint: FILE}             that text tower, locked, with a small image
                                                       tower trained against it (novic.towers;
                                                       the pipeline fills in the checkpoint)

Hub and tag weights are downloaded once (rule prepare_embedder, on the submit host) into the
Hugging Face cache (`cache_dir`, default HF_HOME); embedding jobs then load offline. A load that
finds no weights raises EmbedderLoadError naming the ways out; it never falls back to random
weights. Only `random` and `tiny` are random, and only when asked for.

The embedders share one interface (Embedder): ClipEmbedder wraps open_clip models,
SentenceEmbedder a text-only sentence encoder (encode_images raises TextOnlyError), and
LockedTextEmbedder adds the trained image tower to it.

Text encoding (Embedder.encode_texts) tokenizes with the model's own tokenizer, sorts texts by
token length, and for towers with causal attention and end-of-text pooling (OpenAI CLIP, DFN,
DataComp, tiny) cuts each batch's context to its longest sequence: with causal attention no
token before the end-of-text token sees the padding, so the embedding is unchanged. Other towers
(SigLIP: bidirectional, last-token pooling) use the full context. Sentence encoders mask their
padding, so their batches are cut to the longest text too. Outputs are float32, unit norm.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from novic.io import sha256_file, sha256_json

if TYPE_CHECKING:  # torch is imported where it is used: parsing specs must stay light
    import torch
    from torch import nn

log = logging.getLogger(__name__)

# The project's tiny CLIP: CLIP's BPE tokenizer and 77-token causal text tower, 64-d embeddings.
# Changing it changes every tiny embedding: bump TINY_VERSION (it is part of the spec hash).
TINY_VERSION = 1
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
KINDS = ("hub", "pretrained", "checkpoint", "random", "tiny", "sentence", "locked_text")
OFFLINE_HELP = (
    "Ways to get an embedder: (1) on a machine with internet, run the pipeline (rule "
    "prepare_embedder downloads the weights into the Hugging Face cache, embeddings.cache_dir or "
    "HF_HOME) and share that folder with offline nodes; (2) a local weights file: "
    "{arch: ARCH, checkpoint: /path/to/file.pt}; (3) {locked_text: {}}, the project's offline "
    "CLIP (MiniLM text tower, image tower trained on Fashion-MNIST)."
)


class EmbedderError(ValueError):
    """A malformed embedder spec or an unknown embedder key."""


class EmbedderLoadError(RuntimeError):
    """Weights or tokenizer could not be loaded; the message says what to use instead."""


class TextOnlyError(EmbedderError):
    """Images given to an embedder without an image tower."""


@dataclass(frozen=True)
class EmbedderSpec:
    """A parsed embedder spec. `name` is the hub id, the open_clip architecture, "tiny", or the
    text tower of `sentence` and `locked_text`; `tower` the image tower's settings."""

    kind: str
    name: str
    pretrained: str = ""
    checkpoint: str = ""
    seed: int = 0
    tower: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec in its config form."""
        if self.kind == "hub":
            return {"hub": self.name}
        if self.kind == "tiny":
            return {"tiny": {"seed": self.seed}}
        if self.kind == "random":
            return {"arch": self.name, "random": {"seed": self.seed}}
        if self.kind == "sentence":
            return {"sentence": self.name}
        if self.kind == "locked_text":
            where = {"checkpoint": self.checkpoint} if self.checkpoint else {}
            return {"locked_text": dict(self.tower or {}), **where}
        extra = {"pretrained": self.pretrained} if self.kind == "pretrained" else {}
        return {
            "arch": self.name,
            **extra,
            **({"checkpoint": self.checkpoint} if self.checkpoint else {}),
        }

    def describe(self) -> str:
        return {
            "hub": f"hub model {self.name}",
            "pretrained": f"{self.name} with pretrained tag {self.pretrained}",
            "checkpoint": f"{self.name} from checkpoint {self.checkpoint}",
            "random": f"{self.name} with random weights (seed {self.seed})",
            "tiny": f"the project's tiny CLIP v{TINY_VERSION} (random, seed {self.seed})",
            "sentence": f"text-only sentence encoder {self.name}",
            "locked_text": f"locked text tower {self.name} with the image tower "
            f"{self.checkpoint or '(not trained yet)'}",
        }[self.kind]


def parse_spec(spec: Mapping[str, Any], key: str = "embedder") -> EmbedderSpec:
    """Parse a config spec (see the module docstring); errors name `key` and the bad value.

    Checks the shape only; whether open_clip knows the architecture and tag is checked when
    loading (check_names), which imports open_clip.
    """
    if not isinstance(spec, Mapping):
        raise EmbedderError(f"embedders.{key}: expected a mapping, got {spec!r}")
    keys = set(spec)
    if keys == {"hub"}:
        name = str(spec["hub"]).removeprefix("hf-hub:")
        if name.count("/") != 1 or not all(name.split("/")):
            raise EmbedderError(f"embedders.{key}.hub: expected 'org/name', got {spec['hub']!r}")
        return EmbedderSpec("hub", name)
    if keys == {"tiny"}:
        return EmbedderSpec("tiny", "tiny", seed=_seed(spec["tiny"], f"{key}.tiny"))
    if keys == {"sentence"}:
        if not isinstance(spec["sentence"], str) or not spec["sentence"]:
            raise EmbedderError(f"embedders.{key}.sentence: expected a name, got {spec!r}")
        return EmbedderSpec("sentence", spec["sentence"])
    if "locked_text" in keys and keys <= {"locked_text", "checkpoint"}:
        from jsonschema import Draft202012Validator

        from novic.schema import ConfigError, section_schema
        from novic.settings import ImageTowerSettings, from_section

        where = f"embedders.{key}.locked_text"
        if not isinstance(spec["locked_text"], Mapping):
            raise EmbedderError(f"{where}: expected a mapping, got {spec['locked_text']!r}")
        problems = [
            f"{where}{''.join(f'.{k}' for k in e.absolute_path)}: {e.message}"
            for e in Draft202012Validator(section_schema(ImageTowerSettings.SECTION)).iter_errors(
                spec["locked_text"]
            )
        ]
        if problems:
            raise EmbedderError("; ".join(problems))
        try:
            tower = from_section(ImageTowerSettings, spec["locked_text"], where).to_dict()
        except (ConfigError, TypeError) as exc:
            raise EmbedderError(str(exc)) from exc
        checkpoint = str(spec.get("checkpoint", ""))
        return EmbedderSpec("locked_text", tower["text"], checkpoint=checkpoint, tower=tower)
    if "arch" in keys and isinstance(spec["arch"], str) and spec["arch"]:
        arch, rest = spec["arch"], keys - {"arch"}
        if rest == {"pretrained"}:
            return EmbedderSpec("pretrained", arch, pretrained=str(spec["pretrained"]))
        if rest == {"checkpoint"}:
            return EmbedderSpec("checkpoint", arch, checkpoint=str(spec["checkpoint"]))
        if rest == {"random"}:
            return EmbedderSpec("random", arch, seed=_seed(spec["random"], f"{key}.random"))
    raise EmbedderError(
        f"embedders.{key}: {dict(spec)!r} is not an embedder spec; use one of "
        "{hub: ORG/NAME}, {arch: ARCH, pretrained: TAG}, {arch: ARCH, checkpoint: FILE}, "
        "{arch: ARCH, random: {seed: N}}, {tiny: {seed: N}}, {sentence: NAME}, "
        "{locked_text: {...}}"
    )


def _seed(value: Any, where: str) -> int:
    seed = value.get("seed", 0) if isinstance(value, Mapping) else None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0 or set(value) - {"seed"}:
        raise EmbedderError(f"embedders.{where}: expected {{seed: N}} (N >= 0), got {value!r}")
    return seed


def check_names(spec: EmbedderSpec, key: str = "embedder") -> None:
    """Raise EmbedderError if open_clip does not know the spec's architecture or tag."""
    import open_clip

    if spec.kind not in ("pretrained", "checkpoint", "random"):
        return
    if spec.name not in open_clip.list_models():
        raise EmbedderError(
            f"embedders.{key}.arch: unknown open_clip architecture {spec.name!r} "
            f"(e.g. ViT-B-32, ViT-B-16-SigLIP; open_clip.list_models() lists all)"
        )
    tags = open_clip.list_pretrained_tags_by_model(spec.name)
    if spec.kind == "pretrained" and spec.pretrained not in tags:
        raise EmbedderError(
            f"embedders.{key}.pretrained: {spec.name} has no tag {spec.pretrained!r} "
            f"(known: {tags})"
        )


def spec_sha256(spec: EmbedderSpec) -> str:
    """Identity of the embedder: the spec, plus the tiny model's definition or the file's hash."""
    ident: dict[str, Any] = {"spec": spec.to_dict()}
    if spec.kind == "tiny":
        ident["tiny"] = {"version": TINY_VERSION, "config": TINY_CONFIG}
    if spec.kind in ("sentence", "locked_text"):
        from novic.towers import text_weights_sha256

        ident["text_sha256"] = text_weights_sha256(spec.name)
    if spec.kind in ("checkpoint", "locked_text") and spec.checkpoint:
        ident["checkpoint_sha256"] = sha256_file(spec.checkpoint)
    if spec.kind == "locked_text":  # the tower file's content, not where it lies
        ident["spec"].pop("checkpoint", None)
    return sha256_json(ident)


@contextlib.contextmanager
def hub_offline(offline: bool) -> Iterator[None]:
    """Forbid Hugging Face downloads inside the block (cached files still load)."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


@dataclass
class _TextTower:
    """The parts of a causal, end-of-text-pooled open_clip text tower (for truncated context)."""

    token_embedding: nn.Module
    positional_embedding: torch.Tensor
    transformer: nn.Module
    attn_mask: torch.Tensor
    ln_final: nn.Module
    projection: nn.Module | torch.Tensor | None
    pool_type: str
    eos_id: int | None


def _causal_tower(model: nn.Module) -> _TextTower | None:
    """The text tower's parts when truncating the context cannot change the output, else None.

    Needs: a causal attention mask, no class token or padding mask, and pooling at the end-of-text
    token (argmax of the ids for CLIP's tokenizer, or the first eos id).
    """
    import open_clip
    import torch
    from open_clip.transformer import TextTransformer

    if isinstance(model, open_clip.CLIP):
        src, pool, eos = model, model.text_pool_type, getattr(model, "text_eos_id", None)
        extra_ok = True
    elif isinstance(getattr(model, "text", None), TextTransformer):
        src = model.text
        pool, eos = src.pool_type, getattr(src, "eos_id", None)
        extra_ok = src.cls_emb is None and not src.use_pad_mask and not src.output_tokens
    else:
        return None
    mask = getattr(src, "attn_mask", None)
    if not extra_ok or mask is None or pool not in ("argmax", "eos"):
        return None
    causal = torch.triu(torch.ones_like(mask, dtype=torch.bool), diagonal=1)
    if not torch.equal(torch.isinf(mask) & (mask < 0), causal) or (mask[~causal] != 0).any():
        return None
    return _TextTower(
        src.token_embedding,
        src.positional_embedding,
        src.transformer,
        mask,
        src.ln_final,
        src.text_projection,
        pool,
        eos,
    )


class Embedder:
    """A loaded embedder in eval mode: its model, tokenizer and image preprocessing.

    Subclasses give the text features of a token batch (`_encode`), the context each text needs
    (`token_lengths`) and, where there is an image tower, the image features (`_encode_images`).
    """

    def __init__(
        self,
        spec: EmbedderSpec,
        model: nn.Module,
        tokenizer: Any,
        preprocess: Any,
        device: torch.device,
        autocast: str = "float16",
    ) -> None:
        import torch

        self.spec = spec
        self.model = model.eval().requires_grad_(False).to(device)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.device = device
        self.context_length = int(getattr(tokenizer, "context_length", 0) or 77)
        self._sha256: str | None = None
        self.truncates = False
        dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "none": None}
        if autocast not in dtypes:
            raise EmbedderError(f"autocast must be one of {sorted(dtypes)}, got {autocast!r}")
        self.autocast = dtypes[autocast] if device.type == "cuda" else None
        self._setup()
        with torch.no_grad():
            self.dim = int(self._encode(self.tokenize(["a photo."])).shape[-1])

    def _setup(self) -> None:
        """Inspect the loaded model (after it moved to its device), before the first encoding."""

    def _autocast(self) -> Any:
        import torch

        on = self.autocast is not None
        return torch.autocast(self.device.type, self.autocast, enabled=on)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids [N, context] (int64) from the model's own tokenizer."""
        return self.tokenizer(list(texts))

    def token_lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per text, the context that must be kept (all of it unless the tower allows cuts)."""
        import torch

        return torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised float32 text features of a batch of token ids."""
        raise NotImplementedError

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Unnormalised float32 image features of a preprocessed batch."""
        raise NotImplementedError

    def encode_tokens(self, tokens: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Unit-norm float32 embeddings [N, F] of tokenized texts, in input order.

        Texts are encoded in order of token length; where the tower allows it (`truncates`)
        each batch's context is cut to its longest text, which leaves the embeddings unchanged.
        """
        import torch
        import torch.nn.functional as F

        n = tokens.shape[0]
        out = np.empty((n, self.dim), dtype=np.float32)
        lengths = self.token_lengths(tokens)
        order = torch.argsort(lengths, stable=True)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = tokens[idx, : int(lengths[idx].max())] if self.truncates else tokens[idx]
            with torch.no_grad():
                emb = F.normalize(self._encode(batch), dim=-1)
            out[idx.numpy()] = emb.cpu().numpy()
        return out

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Unit-norm float32 embeddings [N, F] of `texts`, in input order."""
        return self.encode_tokens(self.tokenize(texts), batch_size)

    def encode_images(
        self, images: Sequence[Any] | torch.Tensor, batch_size: int = 64
    ) -> np.ndarray:
        """Unit-norm float32 embeddings [N, F] of PIL images (or an already preprocessed tensor)."""
        import torch
        import torch.nn.functional as F

        n = len(images)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, batch_size):
            part = images[start : start + batch_size]
            if not isinstance(part, torch.Tensor):
                part = torch.stack([self.preprocess(img) for img in part])
            part = part.to(self.device, non_blocking=True)
            with torch.no_grad(), self._autocast():
                emb = self._encode_images(part).float()
            out[start : start + len(part)] = F.normalize(emb, dim=-1).cpu().numpy()
        return out

    @property
    def sha256(self) -> str:
        """The embedder's identity (spec_sha256, computed once)."""
        if self._sha256 is None:
            self._sha256 = spec_sha256(self.spec)
        return self._sha256

    def versions(self) -> dict[str, str]:
        """The library versions that shape the embeddings."""
        import open_clip
        import torch

        return {"open_clip": open_clip.__version__, "torch": torch.__version__}

    def info(self) -> dict[str, Any]:
        """What identifies and describes this embedder (written next to its embeddings)."""
        return {
            "spec": self.spec.to_dict(),
            "description": self.spec.describe(),
            "sha256": self.sha256,
            "dim": self.dim,
            "context_length": self.context_length,
            "tokenizer": type(self.tokenizer).__name__,
            "truncated_context": self.truncates,
            **self.versions(),
        }


class ClipEmbedder(Embedder):
    """An open_clip model (hub, pretrained tag, local checkpoint, random or tiny)."""

    def _setup(self) -> None:
        self._tower = _causal_tower(self.model)
        self.truncates = self._tower is not None

    def token_lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per text, the context that must be kept: up to and including the pooled token."""
        if self._tower is None:
            return super().token_lengths(tokens)
        if self._tower.pool_type == "eos":
            return (tokens == self._tower.eos_id).int().argmax(dim=-1) + 1
        return tokens.argmax(dim=-1) + 1

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features of a batch (truncated tokens are fine for causal towers)."""
        from open_clip.transformer import text_global_pool
        from torch import nn

        tokens = tokens.to(self.device, non_blocking=True)
        with self._autocast():
            if self._tower is None:
                return self.model.encode_text(tokens).float()
            t = self._tower
            length = tokens.shape[1]
            cast = t.transformer.get_cast_dtype()
            x = t.token_embedding(tokens).to(cast) + t.positional_embedding[:length].to(cast)
            x = t.transformer(x, attn_mask=t.attn_mask[:length, :length])
            x = t.ln_final(x)
            x = text_global_pool(x, tokens, t.pool_type, eos_token_id=t.eos_id)
            if isinstance(t.projection, nn.Linear):
                x = t.projection(x)
            elif t.projection is not None:
                x = x @ t.projection
            return x.float()

    def encode_images(
        self, images: Sequence[Any] | torch.Tensor, batch_size: int = 64
    ) -> np.ndarray:
        if not hasattr(images, "shape"):
            images = [img.convert("RGB") for img in images]
        return super().encode_images(images, batch_size)

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)


class SentenceEmbedder(Embedder):
    """A text-only sentence encoder (novic.towers.SentenceTower): mean pooling over the
    non-padding tokens, so each batch is cut to its longest text."""

    def _setup(self) -> None:
        self.truncates = True

    def token_lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        return (tokens != self.tokenizer.pad_id).sum(dim=-1)

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.to(self.device, non_blocking=True)
        with self._autocast():
            return self.model.text(tokens, self.tokenizer.pad_id).float()

    def encode_images(
        self, images: Sequence[Any] | torch.Tensor, batch_size: int = 64
    ) -> np.ndarray:
        raise TextOnlyError(
            f"embedder {self.spec.to_dict()} ({self.spec.describe()}) encodes text only: it has "
            "no image tower. For images use an image-text embedder such as {locked_text: {}} or "
            "an open_clip model."
        )

    def versions(self) -> dict[str, str]:
        import torch
        import transformers

        return {"transformers": transformers.__version__, "torch": torch.__version__}


class LockedTextEmbedder(SentenceEmbedder):
    """The sentence encoder, locked, with the image tower trained against it (novic.towers)."""

    encode_images = Embedder.encode_images

    def _encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.image(images)


def _build_tiny(seed: int) -> tuple[nn.Module, Any, Any]:
    import open_clip
    import torch
    from open_clip.transform import PreprocessCfg, image_transform_v2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**TINY_CONFIG)
    size = TINY_CONFIG["vision_cfg"]["image_size"]
    preprocess = image_transform_v2(PreprocessCfg(size=size), is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
    return model, tokenizer, preprocess


def load_embedder(
    spec: EmbedderSpec | Mapping[str, Any],
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
    offline: bool = False,
    autocast: str = "float16",
    key: str = "embedder",
) -> Embedder:
    """Load an embedder; `offline` forbids downloads (weights must be in the cache already).

    Raises EmbedderLoadError (naming the spec and the ways out) when weights or the tokenizer
    cannot be loaded. Never falls back to random weights.
    """
    import open_clip
    import torch

    if not isinstance(spec, EmbedderSpec):
        spec = parse_spec(spec, key)
    check_names(spec, key)
    device = torch.device(device)
    cache_dir = cache_dir or None
    start = time.perf_counter()
    if spec.kind == "tiny":
        model, tokenizer, preprocess = _build_tiny(spec.seed)
        return ClipEmbedder(spec, model, tokenizer, preprocess, device, autocast)
    if spec.kind in ("sentence", "locked_text"):
        return _load_towers(spec, device, autocast, key)
    name = f"hf-hub:{spec.name}" if spec.kind == "hub" else spec.name
    kwargs: dict[str, Any] = {"cache_dir": cache_dir}
    if spec.kind == "checkpoint":
        if not Path(spec.checkpoint).is_file():
            raise EmbedderLoadError(
                f"embedders.{key}: checkpoint file {spec.checkpoint} does not exist. {OFFLINE_HELP}"
            )
        kwargs.update(pretrained=spec.checkpoint, require_pretrained=True)
    elif spec.kind == "pretrained":
        kwargs.update(pretrained=spec.pretrained, require_pretrained=True)
    elif spec.kind == "hub":
        kwargs.update(require_pretrained=True)
    else:  # random: no tower may fetch its own base weights either
        kwargs.update(pretrained_image=False, pretrained_text=False)
    try:
        with hub_offline(offline), torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model, _, preprocess = open_clip.create_model_and_transforms(name, **kwargs)
            tokenizer = open_clip.get_tokenizer(name, cache_dir=cache_dir)
    except Exception as exc:  # any failure to load (download, unpickling, shapes) is reported
        where = "offline (from the cache only)" if offline else "with downloads allowed"
        raise EmbedderLoadError(
            f"embedders.{key}: could not load {spec.describe()} {where}: "
            f"{type(exc).__name__}: {exc}. {OFFLINE_HELP}"
        ) from exc
    log.info("loaded %s in %.1f s", spec.describe(), time.perf_counter() - start)
    return ClipEmbedder(spec, model, tokenizer, preprocess, device, autocast)


def _load_towers(spec: EmbedderSpec, device: torch.device, autocast: str, key: str) -> Embedder:
    """A sentence encoder, with its trained image tower for `locked_text` (novic.towers)."""
    from torch import nn

    from novic import towers

    try:
        text = towers.SentenceTower(spec.name)
        tokenizer = towers.SentenceTokenizer(spec.name)
        if spec.kind == "sentence":
            model = nn.ModuleDict({"text": text})
            return SentenceEmbedder(spec, model, tokenizer, None, device, autocast)
        if not spec.checkpoint:
            raise towers.TowerError(
                "no image tower checkpoint: the pipeline trains one (rule train_image_tower); "
                "elsewhere give its file as `checkpoint`"
            )
        image, meta = towers.load_tower(spec.checkpoint, spec.tower)
        if meta["text_sha256"] != towers.text_weights_sha256(spec.name):
            raise towers.TowerError(
                f"{spec.checkpoint} was trained against another text tower than {spec.name}"
            )
    except (towers.TowerError, OSError, ValueError) as exc:
        raise EmbedderLoadError(f"embedders.{key}: {spec.to_dict()}: {exc}") from exc
    model = nn.ModuleDict({"text": text, "image": image})
    return LockedTextEmbedder(spec, model, tokenizer, towers.preprocess_image, device, autocast)
