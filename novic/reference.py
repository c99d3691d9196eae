"""Readers for the reference implementation's released artifacts (pallgeuer/novic).

Three files of the reference's release can stand in for work this pipeline would otherwise do:

1. Its caption dataset, `captions_dataset.json` (about 1.8M captions from gpt-3.5-turbo-1106),
   imported as a caption source in place of LLM generation (`import_captions`, rule
   import_captions; `captions.llms.NAME.backend: import`). The result is the same captions
   table (novic.captions.CAPTION_SCHEMA) that filter_captions writes, so sampling into training
   rows and the held-out templates run unchanged.
2. Its trained decoder checkpoints (`ovod_chunkNNNN_<stamp>.train` or `.model`), converted to
   this project's decoder file (`convert_reference_checkpoint`, `novic import-checkpoint`).
3. Its object-noun dictionary (`data/object_nouns.json` of pallgeuer/novic, the same file as
   `datasets/object_noun_curated.json` of pallgeuer/object_noun_dictionary), read into this
   project's noun table in place of building one from WordNet (`read_reference_nouns`, rule
   extract_nouns with `nouns.source.kind: reference`).

None of these files is shipped or downloaded: the user names the paths. The formats below were
read from the reference's public code (facts only: keys, parameter names and shapes); every
assumption is checked when a file is read, and a file that does not fit fails with an error
naming the file and the key, entry or shape that differs.

Caption dataset (a JSON list, optionally gzip-compressed as .json.gz), one object per noun of
the reference's dictionary, with at least:

    target_noun        the canonical noun (this project's `target_noun` of the same noun)
    singular_captions  list of caption templates, each holding only the placeholder {singular}
    plural_captions    list of caption templates, each holding only the placeholder {plural}

(other fields, e.g. pretty_noun, singulars, num_singular_captions, are ignored). Entries are
matched to the vocabulary by `target_noun`; nouns of the file that the vocabulary lacks are
skipped and counted, nouns of the vocabulary the file lacks get no caption (counted).

Object-noun dictionary (a JSON list, optionally .json.gz), one object per canonical noun:

    id                 an integer >= 0, unique (hypernyms refer to it)
    target_noun        the canonical form, unique
    pretty_noun        the display form
    singulars, plurals lists of surface forms (at least one variant in all)
    singulars_freq     multiplicities (integers >= 1) aligned with singulars ...
    plurals_freq       ... and with plurals
    hypernyms          list of ids of this file (empty in the release; checked, not used)

The table keeps the variants and multiplicities as they are; ids are renumbered 1..N in
target_noun order (this project's convention), `frequency` is the one the noun's summed
multiplicity stands for (the inverse of novic.frequency.multiplicity), synsets are empty and
the organic (floor-free) multiplicity is unknown (null).

Decoder checkpoint (a torch.save pickle; read with torch's restricted unpickler unless the
caller trusts the file) of the reference's PrefixedIterDecoder, a dict with:

    model_state_dict   embed_mlp.mlp.0.weight [P*H, F]      (input projection, no hidden layer)
                       logits_linear.weight [V or Q, H]      (output layer, tied to the token
                                                              embedding; Q = V rounded up to 64
                                                              when vocab_quant, extra rows zero)
                       pos_embedding.embedding.weight [P+Cmax-1, H]
                       transformer.layers.{i}.self_attn.in_proj_weight [3H, H]
                       transformer.layers.{i}.self_attn.out_proj.weight [H, H]
                       transformer.layers.{i}.linear1.weight [K, H], .linear2.weight [H, K]
                       transformer.layers.{i}.norm1.weight [H], .norm2.weight [H]
                       transformer.norm.weight [H]
                       causality_mask [P+Cmax-1, P+Cmax-1] (a buffer: 0 visible, -inf hidden)
    target_config      vocab_size V, token_length Cmax, compact_ids, start/end/pad token ids,
                       compact_map (tokenizer id -> compact id, -1 unused), compact_unmap
                       (compact id -> tokenizer id; entry 0 is the tokenizer's pad token)
    target_nouns       the trained nouns with a leading "" (num_invalid_target_nouns = 1)
    cfg_flat           the flattened training config: num_heads (not recoverable from shapes),
                       embedder_spec, dropouts and the architecture switches checked below

The checkpoint does not hold the nouns' tokenisations, so they are rebuilt with this
project's tokenizer of the same embedder and checked against the stored compact map and
token length: a tokenizer that differs from the one the reference trained with fails here.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from novic.io import sha256_file, sha256_json, write_json, write_parquet

log = logging.getLogger(__name__)


class ReferenceFormatError(ValueError):
    """A reference file that does not have the expected format (the message names what)."""


# ---------------------------------------------------------------------------- captions

CAPTION_KEYS = {"singular": "singular_captions", "plural": "plural_captions"}
_PLACEHOLDERS = re.compile(r"\{[^{}]*\}")


def _read_json_list(path: Path, what: str) -> list[Any]:
    """A JSON (or gzip-compressed .json.gz) file holding a list."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ReferenceFormatError(f"{path}: cannot read the {what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReferenceFormatError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ReferenceFormatError(
            f"{path}: expected a JSON list of noun entries, got a {type(data).__name__}"
        )
    return data


def _target_noun(where: str, entry: Any) -> str:
    """The `target_noun` of an entry of a reference file, which must be an object."""
    if not isinstance(entry, dict):
        raise ReferenceFormatError(f"{where}: expected an object, got {type(entry).__name__}")
    noun = entry.get("target_noun")
    if not isinstance(noun, str) or not noun:
        raise ReferenceFormatError(f"{where}: key 'target_noun' missing or not a string")
    return noun


def read_caption_dataset(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a reference caption dataset, checked (see the module docstring)."""
    path = Path(path)
    data = _read_json_list(path, "caption dataset")
    seen: dict[str, int] = {}
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        noun = _target_noun(where, entry)
        where = f"{where} ({noun!r})"
        if noun in seen:
            raise ReferenceFormatError(f"{where}: target_noun repeats entry {seen[noun]}")
        seen[noun] = i
        for form, key in CAPTION_KEYS.items():
            captions = entry.get(key)
            if not isinstance(captions, list):
                raise ReferenceFormatError(f"{where}: key {key!r} missing or not a list")
            want = {"{" + form + "}"}
            for j, caption in enumerate(captions):
                if not isinstance(caption, str):
                    raise ReferenceFormatError(f"{where}: {key}[{j}] is not a string")
                if set(_PLACEHOLDERS.findall(caption)) != want or caption.count("{") != len(
                    _PLACEHOLDERS.findall(caption)
                ):
                    raise ReferenceFormatError(
                        f"{where}: {key}[{j}] = {caption!r} must hold the placeholder "
                        f"{{{form}}} and no other"
                    )
    return data


def import_captions_table(
    entries: Sequence[Mapping[str, Any]], nouns: Sequence[Any], min_length: int, max_length: int
) -> tuple[pa.Table, dict[str, Any]]:
    """Caption templates (novic.captions.CAPTION_SCHEMA) of the vocabulary `nouns` from checked
    reference entries, with counts.

    The captions filter's length limits apply to the caption as the generation filter sees it
    (the template with the prompted noun in place of its placeholder); a template that repeats
    (case-insensitively) within a noun is dropped, as filter_captions drops duplicates. `seq`
    is the caption's position in its entry (singular captions first).
    """
    from novic.captions import CAPTION_SCHEMA, FORMS, fill

    by_target = {noun.target: noun for noun in nouns}
    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys(FORMS, 0)
    skipped = length = duplicates = 0
    matched: set[int] = set()
    for entry in entries:
        noun = by_target.get(entry["target_noun"])
        if noun is None:
            skipped += 1
            continue
        matched.add(noun.id)
        seen: set[str] = set()
        seq = 0
        for form in FORMS:
            for template in entry[CAPTION_KEYS[form]]:
                seq += 1
                text = fill(template, form, noun.prompt_noun(form)) if noun.variants(form) else ""
                n = len(text or template)
                if (min_length and n < min_length) or (max_length and n > max_length):
                    length += 1
                    continue
                if template.lower() in seen:
                    duplicates += 1
                    continue
                seen.add(template.lower())
                rows.append(
                    {"noun_id": noun.id, "form": form, "template": template, "seq": seq - 1}
                )
                counts[form] += 1
    with_captions = {r["noun_id"] for r in rows}
    stats = {
        "source": "import",
        "entries": len(entries),
        "entries_not_in_vocab": skipped,
        "vocab_nouns": len(nouns),
        "vocab_nouns_in_file": len(matched),
        "nouns_without_captions": len(nouns) - len(with_captions),
        "captions": len(rows),
        "singular_captions": counts["singular"],
        "plural_captions": counts["plural"],
        "dropped_length": length,
        "dropped_duplicates": duplicates,
        "usage": {"total_requests": 0, "total_tokens": 0, "retries": 0, "answered": 0, "cached": 0},
    }
    rows.sort(key=lambda r: (r["noun_id"], r["seq"]))
    return pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA), stats


def run_import(
    vocab_path: str | Path,
    source_path: str | Path,
    captions_path: str | Path,
    stats_path: str | Path,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """The import_captions stage: a reference caption dataset -> the captions table that
    filter_captions would write (plus stats). `params`: {"filter": captions.filter}.

    Both outputs are written atomically (a killed job leaves no partial file); the job reads
    only its inputs, so re-running it is the way to resume.
    """
    from novic.captions import load_nouns, vocab_identity
    from novic.settings import FilterSettings

    filters = FilterSettings(**params["filter"])
    nouns = load_nouns(vocab_path)
    entries = read_caption_dataset(source_path)
    captions, stats = import_captions_table(entries, nouns, filters.min_length, filters.max_length)
    if captions.num_rows == 0:
        raise ReferenceFormatError(
            f"{source_path}: no caption of the file belongs to a noun of {vocab_path} "
            f"({len(entries)} entries, {len(nouns)} vocabulary nouns; are the target_noun "
            "strings canonical nouns of the same dictionary?)"
        )
    source_sha = sha256_file(source_path)
    stats["source_path"] = str(source_path)
    stats["source_sha256"] = source_sha
    write_parquet(
        captions,
        captions_path,
        {
            "novic.artifact": "captions",
            "novic.vocab_sha256": vocab_identity(vocab_path),
            "novic.content_sha256": sha256_json(captions.to_pydict()),
            "novic.captions_source": "import",
            "novic.source_sha256": source_sha,
        },
    )
    write_json(stats, stats_path)
    log.info(
        "imported %d captions for %d of %d vocabulary nouns from %s (%d entries not in the "
        "vocabulary)",
        stats["captions"],
        stats["vocab_nouns"] - stats["nouns_without_captions"],
        stats["vocab_nouns"],
        source_path,
        stats["entries_not_in_vocab"],
    )
    return stats


# ---------------------------------------------------------------------------- checkpoints

REQUIRED_KEYS = ("model_state_dict", "target_config", "target_nouns", "cfg_flat")
# cfg_flat settings this converter supports; a file with another value is refused.
SUPPORTED_CFG = {
    "model": "PrefixedIterDecoder",
    "mlp_hidden_layer": "none",
    "weight_tying": True,
    "strictly_causal": False,
    "layer_norm_first": True,
    "layer_bias": False,
    "logits_bias": False,
    "layer_activation": "gelu",
    "init_rezero_mode": "none",
    "with_start_token": False,
    "with_end_token": True,
    "compact_ids": True,
}
_LAYER_PARTS = {  # reference name under transformer.layers.{i}. -> this project's under blocks.{i}.
    "self_attn.in_proj_weight": "qkv.weight",
    "self_attn.out_proj.weight": "proj.weight",
    "linear1.weight": "ff1.weight",
    "linear2.weight": "ff2.weight",
    "norm1.weight": "ln1.weight",
    "norm2.weight": "ln2.weight",
}


def load_reference_checkpoint(path: str | Path, allow_pickle: bool = False) -> dict[str, Any]:
    """The checkpoint dict; torch's restricted unpickler unless `allow_pickle` (trusted)."""
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as safe_exc:
        if not allow_pickle:
            raise ReferenceFormatError(
                f"{path}: the restricted unpickler refused it ({safe_exc}); if you trust the "
                "file, pass --trust-pickle (unpickling can run code hidden in the file)"
            ) from safe_exc
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ReferenceFormatError(f"{path}: cannot unpickle it: {exc}") from exc
    if not isinstance(ckpt, dict):
        raise ReferenceFormatError(f"{path}: expected a dict, got a {type(ckpt).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ReferenceFormatError(
            f"{path}: not a reference decoder checkpoint: missing key(s) {missing} "
            f"(has {sorted(ckpt)})"
        )
    return ckpt


def _tensor(path: Path, state: Mapping[str, Any], key: str, ndim: int) -> Any:
    import torch

    if key not in state:
        raise ReferenceFormatError(f"{path}: model_state_dict lacks {key!r}")
    value = state[key]
    if not isinstance(value, torch.Tensor) or value.ndim != ndim:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ReferenceFormatError(
            f"{path}: model_state_dict[{key!r}] should be a {ndim}-d tensor, got {shape}"
        )
    return value


def _shape(path: Path, key: str, value: Any, want: tuple[int, ...]) -> None:
    if tuple(value.shape) != want:
        raise ReferenceFormatError(
            f"{path}: model_state_dict[{key!r}] has shape {tuple(value.shape)}, expected {want}"
        )


def reference_state_dict(
    path: str | Path, ckpt: Mapping[str, Any], vocab_size: int
) -> tuple[dict[str, Any], dict[str, int]]:
    """This project's state dict (ObjectDecoder names) from the reference's, every shape
    checked, and the sizes read off the shapes (embed_dim, hidden, prefix_tokens, layers,
    ff_dim, max_seq)."""
    import torch

    path = Path(path)
    state = ckpt["model_state_dict"]
    if not isinstance(state, Mapping):
        raise ReferenceFormatError(f"{path}: model_state_dict is not a mapping")
    logits = _tensor(path, state, "logits_linear.weight", 2)
    project = _tensor(path, state, "embed_mlp.mlp.0.weight", 2)
    position = _tensor(path, state, "pos_embedding.embedding.weight", 2)
    rows, h = logits.shape
    ph, f = project.shape
    if ph % h:
        raise ReferenceFormatError(
            f"{path}: model_state_dict['embed_mlp.mlp.0.weight'] has {ph} rows, not a multiple "
            f"of the hidden size {h} (logits_linear.weight); a hidden MLP layer is not supported"
        )
    p = ph // h
    if rows < vocab_size:
        raise ReferenceFormatError(
            f"{path}: model_state_dict['logits_linear.weight'] has {rows} rows, fewer than "
            f"target_config.vocab_size {vocab_size}"
        )
    if rows > vocab_size and torch.any(logits[vocab_size:] != 0):
        raise ReferenceFormatError(
            f"{path}: model_state_dict['logits_linear.weight'] rows {vocab_size}..{rows - 1} "
            "(vocab_quant padding) are not zero"
        )
    max_seq = position.shape[0]
    _shape(path, "pos_embedding.embedding.weight", position, (max_seq, h))
    layers = 0
    while f"transformer.layers.{layers}.linear1.weight" in state:
        layers += 1
    if layers == 0:
        raise ReferenceFormatError(f"{path}: model_state_dict has no transformer.layers.0.*")
    k = _tensor(path, state, "transformer.layers.0.linear1.weight", 2).shape[0]
    want = {
        "self_attn.in_proj_weight": (3 * h, h),
        "self_attn.out_proj.weight": (h, h),
        "linear1.weight": (k, h),
        "linear2.weight": (h, k),
        "norm1.weight": (h,),
        "norm2.weight": (h,),
    }
    out: dict[str, Any] = {
        "project.weight": project,
        "token.weight": logits[:vocab_size],
        "position": position,
    }
    used = {"embed_mlp.mlp.0.weight", "logits_linear.weight", "pos_embedding.embedding.weight"}
    for i in range(layers):
        for part, ours in _LAYER_PARTS.items():
            key = f"transformer.layers.{i}.{part}"
            value = _tensor(path, state, key, len(want[part]))
            _shape(path, key, value, want[part])
            out[f"blocks.{i}.{ours}"] = value
            used.add(key)
    final = _tensor(path, state, "transformer.norm.weight", 1)
    _shape(path, "transformer.norm.weight", final, (h,))
    out["ln.weight"] = final
    used.add("transformer.norm.weight")
    if "causality_mask" in state:
        mask = _tensor(path, state, "causality_mask", 2)
        _shape(path, "causality_mask", mask, (max_seq, max_seq))
        i = torch.arange(max_seq)
        visible = i[None, :] <= torch.clamp(i[:, None], min=p - 1)
        if not (torch.all(mask[visible] == 0) and torch.all(torch.isneginf(mask[~visible]))):
            raise ReferenceFormatError(
                f"{path}: causality_mask is not causal with a fully visible {p}x{p} prefix block "
                "(strictly_causal decoders are not supported)"
            )
        used.add("causality_mask")
    extra = sorted(set(state) - used)
    if extra:
        raise ReferenceFormatError(
            f"{path}: model_state_dict has parameters this converter does not map: {extra[:8]}"
            f"{' ...' if len(extra) > 8 else ''} (biases, an untied token embedding, ReZero "
            "scales or a hidden MLP layer are not supported)"
        )
    out = {key: value.detach().to(torch.float32).clone() for key, value in out.items()}
    sizes = {"embed_dim": f, "hidden": h, "prefix_tokens": p, "layers": layers}
    sizes.update({"ff_dim": k, "max_seq": max_seq})
    return out, sizes


def _check_cfg(path: Path, cfg: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    for key, want in SUPPORTED_CFG.items():
        if key in cfg and cfg[key] != want:
            raise ReferenceFormatError(
                f"{path}: cfg_flat[{key!r}] is {cfg[key]!r}; this converter supports {want!r}"
            )
    for key, size in (
        ("hidden_dim", "hidden"),
        ("num_layers", "layers"),
        ("mlp_seq_len", "prefix_tokens"),
    ):
        if key in cfg and int(cfg[key]) != sizes[size]:
            raise ReferenceFormatError(
                f"{path}: cfg_flat[{key!r}] is {cfg[key]!r} but the weights have "
                f"{size} = {sizes[size]}"
            )
    if "feedfwd_scale" in cfg:
        scale = Fraction(str(cfg["feedfwd_scale"]))
        if scale * sizes["hidden"] != sizes["ff_dim"]:
            raise ReferenceFormatError(
                f"{path}: cfg_flat['feedfwd_scale'] is {cfg['feedfwd_scale']!r} but the weights "
                f"have a feed-forward width of {sizes['ff_dim']} for hidden {sizes['hidden']}"
            )


def _target_config(path: Path, tc: Any) -> dict[str, Any]:
    import torch

    if not isinstance(tc, Mapping):
        raise ReferenceFormatError(f"{path}: target_config is not a mapping")
    for key in ("vocab_size", "token_length", "compact_map", "compact_unmap"):
        if key not in tc:
            raise ReferenceFormatError(f"{path}: target_config lacks {key!r}")
    for key, want in (("compact_ids", True), ("pad_token_id", 0), ("end_token_id", 0)):
        if key in tc and tc[key] != want:
            raise ReferenceFormatError(
                f"{path}: target_config[{key!r}] is {tc[key]!r}; expected {want!r}"
            )
    if tc.get("start_token_id") is not None:
        raise ReferenceFormatError(
            f"{path}: target_config['start_token_id'] is {tc['start_token_id']!r}; targets "
            "with a start token are not supported"
        )
    unmap = tc["compact_unmap"]
    cmap = tc["compact_map"]
    for key, value in (("compact_unmap", unmap), ("compact_map", cmap)):
        if not isinstance(value, torch.Tensor) or value.ndim != 1:
            raise ReferenceFormatError(f"{path}: target_config[{key!r}] is not a 1-d tensor")
    v = int(tc["vocab_size"])
    if unmap.numel() != v:
        raise ReferenceFormatError(
            f"{path}: target_config['compact_unmap'] has {unmap.numel()} entries, vocab_size is {v}"
        )
    raw = unmap.tolist()
    if raw[1:] != sorted(set(raw[1:])) or min(raw) < 0:
        raise ReferenceFormatError(
            f"{path}: target_config['compact_unmap'][1:] is not sorted, unique tokenizer ids"
        )
    if any(cmap[r].item() != c for c, r in enumerate(raw) if c) or cmap[raw[0]].item() != 0:
        raise ReferenceFormatError(
            f"{path}: target_config['compact_map'] is not the inverse of compact_unmap"
        )
    return {"vocab_size": v, "token_length": int(tc["token_length"]), "unmap": raw, "map": cmap}


def reference_targets(
    path: Path,
    tc: Mapping[str, Any],
    nouns: Sequence[str],
    tokenizer: Any,
    noun_ids: Sequence[int],
) -> Any:
    """This project's TargetTokens for the reference's nouns, rebuilt with `tokenizer` and
    checked against the stored compact map and token length."""
    from novic.tokens import TargetTokens, end_token_id, raw_tokens

    cmap = tc["map"]
    end = end_token_id(tokenizer)
    if end >= cmap.numel() or cmap[end].item() != 0:
        raise ReferenceFormatError(
            f"{path}: the tokenizer's end token {end} is not compact id 0 in "
            "target_config['compact_map']: another tokenizer than the reference's?"
        )
    seqs = []
    for noun in nouns:
        ids = raw_tokens(tokenizer, noun)
        compact = []
        for t in ids[:-1]:
            c = cmap[t].item() if t < cmap.numel() else -1
            if c < 1:
                raise ReferenceFormatError(
                    f"{path}: target noun {noun!r} tokenises to id {t}, which the checkpoint's "
                    "compact map does not hold: the tokenizer differs from the reference's"
                )
            compact.append(c)
        seqs.append([*compact, 0])
    cmax = max(map(len, seqs))
    if cmax != tc["token_length"]:
        raise ReferenceFormatError(
            f"{path}: the nouns tokenise to at most {cmax} tokens, target_config['token_length'] "
            f"is {tc['token_length']}: the tokenizer differs from the reference's"
        )
    used = {c for seq in seqs for c in seq[:-1]}
    if used != set(range(1, tc["vocab_size"])):
        raise ReferenceFormatError(
            f"{path}: the nouns use {len(used)} compact tokens, the checkpoint has "
            f"{tc['vocab_size'] - 1}: the tokenizer differs from the reference's"
        )
    tokens = np.zeros((len(seqs) + 1, cmax), dtype=np.int64)
    for row, seq in enumerate(seqs, 1):
        tokens[row, : len(seq)] = seq
    return TargetTokens(
        nouns=["", *nouns],
        noun_ids=[0, *map(int, noun_ids)],
        raw_ids=[end, *tc["unmap"][1:]],
        tokens=tokens,
    )


def embedder_from_reference(spec: str) -> dict[str, Any]:
    """This project's embedder spec for the reference's `openclip:ORG/NAME` (a hub model)."""
    kind, _, name = spec.partition(":")
    if kind == "openclip" and name.count("/") == 1 and all(name.split("/")):
        return {"hub": name}
    raise ReferenceFormatError(
        f"the reference embedder {spec!r} has no automatic equivalent here; name this "
        "project's embedder spec (--embedder)"
    )


def dictionary_ids(nouns: Sequence[str], nouns_path: str | Path | None) -> tuple[list[int], int]:
    """Dictionary ids for the reference nouns: from a noun table by target_noun (nouns it
    lacks get new ids above its largest), or 1..N without one. Also the count of new ids."""
    if nouns_path is None:
        return list(range(1, len(nouns) + 1)), len(nouns)
    from novic.dictionary import read_nouns

    table = read_nouns(nouns_path).select(["id", "target_noun"]).to_pylist()
    index = {row["target_noun"]: int(row["id"]) for row in table}
    top = max(index.values(), default=0)
    ids, new = [], 0
    for noun in nouns:
        if noun in index:
            ids.append(index[noun])
        else:
            new += 1
            ids.append(top + new)
    return ids, new


def convert_reference_checkpoint(
    src: str | Path,
    dst: str | Path,
    embedder: Mapping[str, Any] | None = None,
    nouns_path: str | Path | None = None,
    heads: int | None = None,
    allow_pickle: bool = False,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Convert a reference decoder checkpoint into this project's decoder file `dst`.

    `embedder`: this project's spec of the embedder the checkpoint was trained on (default:
    derived from cfg_flat['embedder_spec'], openclip:ORG/NAME -> {hub: ORG/NAME}); its
    tokenizer rebuilds the target tokens. `nouns_path`: a noun table (dictionary) whose ids the
    target nouns take (default: 1..N). `heads`: the attention heads if cfg_flat lacks
    num_heads. The written file is read back and its weights compared with the source's.
    Returns a summary (sizes, counts).
    """
    import torch

    from novic.checkpoint import load_decoder, save_decoder
    from novic.embedders import parse_spec, spec_sha256
    from novic.model import ObjectDecoder
    from novic.settings import DecoderSettings, RunSettings
    from novic.tokens import load_tokenizer

    src = Path(src)
    ckpt = load_reference_checkpoint(src, allow_pickle)
    cfg = ckpt["cfg_flat"] if isinstance(ckpt["cfg_flat"], Mapping) else {}
    tc = _target_config(src, ckpt["target_config"])
    state, sizes = reference_state_dict(src, ckpt, tc["vocab_size"])
    _check_cfg(src, cfg, sizes)
    if sizes["max_seq"] != sizes["prefix_tokens"] + tc["token_length"] - 1:
        raise ReferenceFormatError(
            f"{src}: pos_embedding.embedding.weight has {sizes['max_seq']} rows; expected P + "
            f"Cmax - 1 = {sizes['prefix_tokens']} + {tc['token_length']} - 1"
        )
    nouns = ckpt["target_nouns"]
    invalid = int(ckpt.get("num_invalid_target_nouns", 1))
    if not isinstance(nouns, (list, tuple)) or invalid != 1 or not nouns or nouns[0] != "":
        raise ReferenceFormatError(
            f"{src}: target_nouns should be a list starting with '' (num_invalid_target_nouns 1)"
        )
    nouns = [str(n) for n in nouns[1:]]
    if len(set(nouns)) != len(nouns) or not all(nouns):
        raise ReferenceFormatError(f"{src}: target_nouns has empty or repeated nouns")
    if heads is None:
        if "num_heads" not in cfg:
            raise ReferenceFormatError(
                f"{src}: cfg_flat lacks 'num_heads' (the shapes do not tell); pass --heads"
            )
        heads = int(cfg["num_heads"])
    if embedder is None:
        if not isinstance(cfg.get("embedder_spec"), str):
            raise ReferenceFormatError(f"{src}: cfg_flat lacks 'embedder_spec'; pass --embedder")
        embedder = embedder_from_reference(cfg["embedder_spec"])
    spec = parse_spec(embedder)
    ids, new_ids = dictionary_ids(nouns, nouns_path)
    targets = reference_targets(src, tc, nouns, load_tokenizer(embedder, cache_dir), ids)
    model_cfg = {
        "prefix_tokens": sizes["prefix_tokens"],
        "layers": sizes["layers"],
        "hidden": sizes["hidden"],
        "heads": heads,
        "feedforward_scale": sizes["ff_dim"] / sizes["hidden"],
        "dropout": float(cfg.get("layer_dropout", 0.1)),
        "input_dropout": float(cfg.get("input_dropout", 0.1)),
    }
    try:
        settings = RunSettings.from_config({"model": model_cfg})
        dcfg = DecoderSettings.from_settings(
            settings.model, sizes["embed_dim"], tc["vocab_size"], tc["token_length"]
        )
    except (ValueError, TypeError) as exc:
        raise ReferenceFormatError(f"{src}: the model settings do not fit: {exc}") from exc
    model = ObjectDecoder(dcfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ReferenceFormatError(f"{src}: the mapped weights do not fit: {exc}") from exc
    meta = {
        "run": f"reference:{src.name}",
        "embedder": "reference",
        "embedder_spec": dict(embedder),
        "embedder_sha256": spec_sha256(spec),
        "embed_dim": sizes["embed_dim"],
        "imported_from": {
            "path": str(src),
            "sha256": sha256_file(src),
            "embedder_spec": cfg.get("embedder_spec"),
            "vocab_thres": cfg.get("vocab_thres"),
            "nouns_path": str(nouns_path) if nouns_path else None,
            "nouns_with_new_ids": new_ids,
        },
    }
    summary = {"imported": True, "nouns": len(nouns), **sizes, "vocab_size": tc["vocab_size"]}
    save_decoder(dst, model, targets, meta, settings, summary=summary)
    loaded, _, _ = load_decoder(dst)
    for key, value in loaded.state_dict().items():
        if key in state and not torch.equal(value, state[key]):
            raise ReferenceFormatError(f"{dst}: {key} did not survive the round trip")
    return summary


# ---------------------------------------------------------------------------- noun dictionary

NOUN_ENTRY_LISTS = ("singulars", "plurals", "singulars_freq", "plurals_freq", "hypernyms")


def _noun_entry(where: str, entry: Any) -> tuple[int, str]:
    """Check one entry of the reference's noun dictionary; return its id and target noun."""
    from novic.forms import canonical

    noun = _target_noun(where, entry)
    where = f"{where} ({noun!r})"
    if canonical(noun) != noun:
        raise ReferenceFormatError(f"{where}: target_noun is not a canonical form")
    noun_id = entry.get("id")
    if not isinstance(noun_id, int) or isinstance(noun_id, bool) or noun_id < 0:
        raise ReferenceFormatError(f"{where}: key 'id' missing or not an integer >= 0")
    if not isinstance(entry.get("pretty_noun"), str) or not entry["pretty_noun"]:
        raise ReferenceFormatError(f"{where}: key 'pretty_noun' missing or not a string")
    for key in NOUN_ENTRY_LISTS:
        if not isinstance(entry.get(key), list):
            raise ReferenceFormatError(f"{where}: key {key!r} missing or not a list")
    for form in ("singulars", "plurals"):
        variants, freqs = entry[form], entry[f"{form}_freq"]
        if not all(isinstance(v, str) and v.strip() for v in variants):
            raise ReferenceFormatError(f"{where}: {form} holds a non-string or empty variant")
        if len(freqs) != len(variants):
            raise ReferenceFormatError(
                f"{where}: {len(variants)} {form} but {len(freqs)} {form}_freq"
            )
        if not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in freqs):
            raise ReferenceFormatError(f"{where}: {form}_freq must hold integers >= 1")
    if not entry["singulars"] and not entry["plurals"]:
        raise ReferenceFormatError(f"{where}: neither singulars nor plurals")
    return noun_id, noun


def read_reference_nouns(path: str | Path) -> pa.Table:
    """The reference's object-noun dictionary as a noun table (see the module docstring)."""
    from novic.dictionary import NOUN_SCHEMA
    from novic.frequency import MIN_FREQ, MULT_SCALE

    path = Path(path)
    entries = _read_json_list(path, "noun dictionary")
    if not entries:
        raise ReferenceFormatError(f"{path}: the noun dictionary has no entries")
    ids: dict[int, int] = {}
    targets: dict[str, int] = {}
    for i, entry in enumerate(entries):
        noun_id, noun = _noun_entry(f"{path}: entry {i}", entry)
        for seen, key, what in ((ids, noun_id, "id"), (targets, noun, "target_noun")):
            if key in seen:
                raise ReferenceFormatError(
                    f"{path}: entry {i} ({noun!r}): {what} {key!r} repeats entry {seen[key]}"
                )
            seen[key] = i
    for i, entry in enumerate(entries):
        unknown = [h for h in entry["hypernyms"] if h not in ids]
        if unknown:
            raise ReferenceFormatError(
                f"{path}: entry {i} ({entry['target_noun']!r}): hypernyms {unknown[:5]} are "
                "not ids of the file"
            )
    rows = []
    for new_id, entry in enumerate(sorted(entries, key=lambda e: e["target_noun"]), 1):
        total = sum(entry["singulars_freq"]) + sum(entry["plurals_freq"])
        rows.append(
            {
                "id": new_id,
                "target_noun": entry["target_noun"],
                "pretty_noun": entry["pretty_noun"],
                "singulars": list(entry["singulars"]),
                "plurals": list(entry["plurals"]),
                "singulars_freq": list(entry["singulars_freq"]),
                "plurals_freq": list(entry["plurals_freq"]),
                "frequency": MIN_FREQ * math.exp((total - 1) / MULT_SCALE),
                "synsets": [],
                "organic_multiplicity": None,
            }
        )
    log.info("%s: %d nouns of the reference's dictionary", path, len(rows))
    return pa.Table.from_pylist(rows, schema=NOUN_SCHEMA)


def reference_nouns_metadata(path: str | Path) -> dict[str, str]:
    """File metadata of a noun table read from the reference's dictionary."""
    return {
        "novic.noun_source": "reference",
        "novic.source_sha256": sha256_file(path),
        "novic.wordnet_version": "3.1",  # the reference's (NLTK's wordnet31)
    }
