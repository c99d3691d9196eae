"""Classify images with a trained decoder: the embedder named in the checkpoint + decoding.

    from novic.classify import Classifier
    clf = Classifier("results/models/tiny_ft9/decoder.pt")
    for result in clf.classify(["cat.jpg", "dog.png"]):
        print(result.source, result.predictions[:3] if result.ok else result.error)

`clf.classify_texts(["a dog on a beach"])` decodes text embeddings the same way (a Result per
text, its `source` the text): what the decoder makes of a caption, without the modality gap.

`novic classify --model PATH IMAGE...` (novic.cli) prints the same. Images are read one by one
and shrunk as they are read (novic.datasets.open_image: 16-bit and float images scaled to 8 bits,
regular files only, at most MAX_PIXELS); a file that is missing or not an image gives a result
with an error message, and the rest of the batch still runs. The embedder's weights are read
from the local cache only unless `offline=False` (`--allow-download`). Probabilities are the
model's sequence probabilities (exp of the summed token log-probabilities), not renormalised
over the guide list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from novic.checkpoint import CheckpointError, load_decoder
from novic.decoding import NounDecoder, Prediction
from novic.device import check_device
from novic.embedders import Embedder, EmbedderLoadError, load_embedder
from novic.settings import DEFAULT_GENCFG

log = logging.getLogger(__name__)


@dataclass
class Result:
    """The predictions for one image (or text), or why there are none."""

    source: str
    predictions: list[Prediction] = field(default_factory=list)
    error: str = ""
    source_type: str = "image"  # "image" or "text": what `source` is, its key in to_dict

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        if not self.ok:
            return {self.source_type: self.source, "error": self.error}
        return {
            self.source_type: self.source,
            "predictions": [
                {"noun": p.noun, "prob": p.prob, "logprob": p.logprob, "score": p.score,
                 "kind": p.kind}
                for p in self.predictions[:top_k]
            ],
        }  # fmt: skip


def detokenizer(tokenizer: Any) -> Callable[[list[int]], str]:
    """Raw token ids -> text, for open_clip's BPE tokenizer and Hugging Face tokenizers."""
    hf = getattr(tokenizer, "tokenizer", None)
    if hf is not None and hasattr(hf, "decode"):
        return lambda ids: hf.decode(ids, skip_special_tokens=True)
    if hasattr(tokenizer, "decode"):
        return lambda ids: tokenizer.decode(ids)
    return lambda ids: " ".join(map(str, ids))


def locate_tower(spec: Mapping[str, Any], decoder: str | Path) -> dict[str, Any]:
    """An embedder spec whose relative image tower checkpoint (locked_text specs store it
    relative to the project) is found from the working directory or, failing that, from the
    folders above the decoder file (results/models/RUN/decoder.pt lies 3 levels down)."""
    spec = dict(spec)
    tower = spec.get("checkpoint")
    if "locked_text" not in spec or not tower or Path(tower).is_absolute() or Path(tower).exists():
        return spec
    for folder in Path(decoder).resolve().parents:
        if (folder / tower).is_file():
            return spec | {"checkpoint": str(folder / tower)}
    return spec


def load_image(source: Any) -> Any:
    """A path or an already opened PIL image, as 8-bit RGB shrunk for the embedder
    (novic.datasets.open_image and to_rgb)."""
    from novic.datasets import open_image, to_rgb

    if hasattr(source, "convert"):
        return to_rgb(source)
    return open_image(source)


class Classifier:
    """A decoder checkpoint with its embedder: `classify(images)` -> one Result per image.

    `gencfg` is a generation config name (novic.decoding); `guide` limits the output to these
    nouns (default: all the model's target nouns); `embedder` may be passed in to share one
    loaded model, else the checkpoint's is loaded (`cache_dir`, `offline` as in
    novic.embedders.load_embedder: by default nothing is downloaded). `allow_pickle` reads an
    old pickled checkpoint, which can run code hidden in it (novic.checkpoint.load_decoder).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        gencfg: str = DEFAULT_GENCFG,
        guide: Sequence[str] | None = None,
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
        embedder: Embedder | None = None,
        cache_dir: str | None = None,
        offline: bool = True,
        allow_pickle: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = check_device(device)
        try:
            self.model, self.targets, self.record = load_decoder(
                checkpoint, self.device, allow_pickle=allow_pickle
            )
        except CheckpointError:
            raise
        except (OSError, ValueError, RuntimeError, EOFError) as exc:
            raise ValueError(f"{checkpoint}: cannot read the decoder checkpoint: {exc}") from exc
        meta = self.record.get("meta", {})
        if embedder is None:
            if "embedder_spec" not in meta:
                raise ValueError(f"{checkpoint}: the checkpoint names no embedder (meta)")
            spec = locate_tower(meta["embedder_spec"], checkpoint)
            embedder = load_embedder(spec, self.device, cache_dir=cache_dir, offline=offline)
        self.embedder = embedder
        self._check_embedder(checkpoint, meta)
        self.batch_size = batch_size
        self.decoder = NounDecoder(
            self.model,
            self.targets,
            gencfg,
            guide=guide,
            detokenize=detokenizer(embedder.tokenizer),
            batch_size=batch_size,
        )

    def _check_embedder(self, checkpoint: str | Path, meta: dict[str, Any]) -> None:
        dim = self.model.cfg.embed_dim
        if self.embedder.dim != dim:
            raise ValueError(
                f"{checkpoint}: the decoder expects {dim}-d embeddings, the embedder gives "
                f"{self.embedder.dim}-d"
            )
        want = meta.get("embedder_sha256")
        if want and want != self.embedder.sha256:
            log.warning(
                "%s was trained on embedder %s, not on %s: predictions will be off",
                checkpoint,
                meta.get("embedder_spec"),
                self.embedder.spec.to_dict(),
            )

    @property
    def nouns(self) -> list[str]:
        """The model's target nouns."""
        return self.targets.nouns[1:]

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        """Unit image embeddings [N, F] of PIL images."""
        return self.embedder.encode_images(images, batch_size=self.batch_size)

    def decode(self, embeddings: np.ndarray | torch.Tensor) -> list[list[Prediction]]:
        return self.decoder(embeddings)

    def classify(self, images: Iterable[Any]) -> list[Result]:
        """Predictions for each image (a path or a PIL image), in order; unreadable ones get
        a Result with `error` set and do not stop the others."""
        results: list[Result] = []
        batch: list[tuple[int, Any]] = []

        def flush() -> None:
            if not batch:
                return
            preds = self.decode(self.embed([im for _, im in batch]))
            for (i, _), p in zip(batch, preds, strict=True):
                results[i].predictions = p
            batch.clear()

        for source in images:
            name = str(getattr(source, "filename", "") or source)
            results.append(Result(name))
            try:
                image = load_image(source)
            except Exception as exc:  # report and go on with the rest
                results[-1].error = str(exc) if str(exc) else type(exc).__name__
                log.info("skipping %s", results[-1].error)  # the Result carries it
                continue
            batch.append((len(results) - 1, image))
            if len(batch) >= self.batch_size:
                flush()
        flush()
        return results

    def classify_texts(self, texts: Sequence[str]) -> list[Result]:
        """Predictions for each text's embedding, in order, decoded as images are."""
        texts = list(texts)
        if not texts:
            return []
        preds = self.decode(self.embedder.encode_texts(texts, batch_size=self.batch_size))
        return [Result(t, p, source_type="text") for t, p in zip(texts, preds, strict=True)]


def classify_command(
    model: str,
    images: Sequence[str],
    gencfg: str,
    top_k: int,
    as_json: bool,
    batch_size: int,
    device: str,
    guide_file: str | None,
    cache_dir: str | None,
    allow_download: bool = False,
    trust_pickled: bool = False,
    texts: Sequence[str] = (),
) -> int:
    """What `novic classify` runs on images, then texts; returns the exit status (1 if any
    image failed)."""
    import json
    import sys

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    guide = None
    if guide_file:
        from novic.forms import canonical

        lines = Path(guide_file).read_text(encoding="utf-8").splitlines()
        guide = [c for line in lines if (c := canonical(line.split("#", 1)[0].strip()))]
    start = time.perf_counter()
    try:
        clf = Classifier(
            model, gencfg, guide, device, batch_size, cache_dir=cache_dir,
            offline=not allow_download, allow_pickle=trust_pickled,
        )  # fmt: skip
    except EmbedderLoadError as exc:
        if allow_download:
            raise
        raise EmbedderLoadError(f"{exc} (--allow-download lets novic classify fetch it)") from exc
    loaded = time.perf_counter()
    results = clf.classify(images) + clf.classify_texts(texts)
    done = time.perf_counter()
    if as_json:
        out = {
            "model": model,
            "gencfg": clf.decoder.cfg.name,
            "device": str(clf.device),
            "results": [r.to_dict(top_k) for r in results],
        }
        print(json.dumps(out, indent=2))
    else:
        for r in results:
            if not r.ok:
                print(f"{r.source}: ERROR {r.error}")
                continue
            shown = ", ".join(f"{p.noun} ({p.prob:.3f})" for p in r.predictions[:top_k])
            print(f"{r.source}: {shown}")
    ok = sum(r.ok for r in results)
    what = "images and texts" if images and texts else "texts" if texts else "images"
    print(
        f"{ok} of {len(results)} {what} classified on {clf.device} "
        f"(load {loaded - start:.1f} s, classify {done - loaded:.2f} s)",
        file=sys.stderr,
    )
    return 0 if ok == len(results) else 1
