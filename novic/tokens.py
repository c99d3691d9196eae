"""Target tokenisation: the nouns a decoder learns, as compact token sequences.

Each target noun (its canonical `target_noun`) is tokenised with the embedder's own tokenizer,
without a start token and with the end token (reference section 5): CLIP's BPE for open_clip
embedders, the WordPiece tokenizer of the text tower for sentence encoders (end token [SEP]).
Only the token ids that occur in the vocabulary's nouns are kept and renumbered 1..V-1 in
increasing raw-id order; compact id 0 is the end token and also the padding. Cmax is the longest
tokenisation, end token included.

`TargetTokens` holds the result: `nouns` (entry 0 is "", "no noun"), the dictionary `noun_ids`
aligned with them, `raw_ids` (compact id -> tokenizer id, raw_ids[0] = the end token) and the
token table `tokens` [len(nouns), Cmax] (row 0 all zeros). `lookup` maps the dictionary noun ids
stored in datasets (0 = none) to rows of that table. `to_dict`/`from_dict` round-trip it through
a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def load_tokenizer(spec: Mapping[str, Any], cache_dir: str | None = None) -> Any:
    """The tokenizer of an embedder spec (novic.embedders) without loading the model weights."""
    import open_clip

    from novic.embedders import TINY_CONFIG, EmbedderLoadError, parse_spec

    parsed = parse_spec(spec)
    if parsed.kind in ("sentence", "locked_text"):
        from novic.towers import SentenceTokenizer, TowerError

        try:
            return SentenceTokenizer(parsed.name)
        except (TowerError, OSError, ValueError) as exc:
            msg = f"could not load the tokenizer of {parsed.describe()}: {exc}"
            raise EmbedderLoadError(msg) from exc
    if parsed.kind == "tiny":
        return open_clip.SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
    name = f"hf-hub:{parsed.name}" if parsed.kind == "hub" else parsed.name
    try:
        return open_clip.get_tokenizer(name, cache_dir=cache_dir or None)
    except (OSError, RuntimeError, ValueError, ImportError) as exc:
        raise EmbedderLoadError(
            f"could not load the tokenizer of {parsed.describe()}: {type(exc).__name__}: {exc}"
        ) from exc


def end_token_id(tokenizer: Any) -> int:
    """The tokenizer's end-of-text id (open_clip's BPE tokenizer, or a Hugging Face one)."""
    if hasattr(tokenizer, "eot_token_id"):
        return int(tokenizer.eot_token_id)
    hf = getattr(tokenizer, "tokenizer", None)
    for attr in ("eos_token_id", "sep_token_id"):
        value = getattr(hf, attr, None)
        if value is not None:
            return int(value)
    raise TypeError(f"cannot find the end token of tokenizer {type(tokenizer).__name__}")


def raw_tokens(tokenizer: Any, text: str) -> list[int]:
    """Tokenizer ids of `text` without a start token, followed by the end token."""
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "eot_token_id"):  # open_clip BPE
        ids = list(tokenizer.encode(text))
    elif hasattr(tokenizer, "tokenizer"):  # open_clip HFTokenizer / SigLipTokenizer
        clean: Callable[[str], str] = getattr(tokenizer, "clean_fn", lambda t: t)
        ids = list(tokenizer.tokenizer(clean(text), add_special_tokens=False)["input_ids"])
    else:
        raise TypeError(f"unsupported tokenizer {type(tokenizer).__name__}")
    if not ids:
        raise ValueError(f"target noun {text!r} tokenises to nothing")
    return [*ids, end_token_id(tokenizer)]


@dataclass(frozen=True)
class TargetTokens:
    """Target nouns and their compact tokenisations (see the module docstring)."""

    nouns: list[str]
    noun_ids: list[int]
    raw_ids: list[int]
    tokens: np.ndarray  # int64 [len(nouns), Cmax]

    @property
    def vocab_size(self) -> int:
        """V: compact token ids including 0."""
        return len(self.raw_ids)

    @property
    def max_tokens(self) -> int:
        """Cmax: the longest tokenisation, end token included."""
        return int(self.tokens.shape[1])

    def lookup(self) -> np.ndarray:
        """int64 array mapping a dictionary noun id (0 = none) to its row of `tokens`."""
        table = np.zeros(max(self.noun_ids) + 1, dtype=np.int64)
        table[np.asarray(self.noun_ids[1:], dtype=np.int64)] = np.arange(1, len(self.noun_ids))
        return table

    def decode(self, compact: Sequence[int], tokenizer: Any) -> str:
        """Text of compact tokens up to the first end token (for inspection)."""
        raw = []
        for t in compact:
            if int(t) == 0:
                break
            raw.append(self.raw_ids[int(t)])
        return tokenizer.decode(raw).strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "nouns": list(self.nouns),
            "noun_ids": list(self.noun_ids),
            "raw_ids": list(self.raw_ids),
            "tokens": self.tokens.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetTokens:
        return cls(
            nouns=list(d["nouns"]),
            noun_ids=[int(i) for i in d["noun_ids"]],
            raw_ids=[int(i) for i in d["raw_ids"]],
            tokens=np.asarray(d["tokens"], dtype=np.int64),
        )


def build_target_tokens(
    tokenizer: Any, noun_ids: Sequence[int], nouns: Sequence[str]
) -> TargetTokens:
    """Tokenise the target nouns (dictionary ids `noun_ids`, >= 1) and build the compact map."""
    if len(noun_ids) != len(nouns) or not nouns:
        raise ValueError("need one id per target noun, and at least one noun")
    if min(noun_ids) < 1 or len(set(noun_ids)) != len(noun_ids):
        raise ValueError("target noun ids must be unique and >= 1 (0 means no noun)")
    end = end_token_id(tokenizer)
    seqs = [raw_tokens(tokenizer, noun) for noun in nouns]
    used = sorted({t for seq in seqs for t in seq[:-1]} - {end})
    compact = {raw: i for i, raw in enumerate([end, *used])}
    cmax = max(map(len, seqs))
    tokens = np.zeros((len(seqs) + 1, cmax), dtype=np.int64)
    for row, seq in enumerate(seqs, 1):
        tokens[row, : len(seq)] = [compact[t] for t in seq]
    return TargetTokens(
        nouns=["", *nouns],
        noun_ids=[0, *map(int, noun_ids)],
        raw_ids=[end, *used],
        tokens=tokens,
    )


def target_tokens_tensor(
    targets: torch.Tensor, lookup: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """Compact tokens [..., Cmax] of dictionary noun ids `targets` [...] (0 -> all zeros)."""
    return tokens[lookup[targets]]
