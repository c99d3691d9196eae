"""Multiset prompt templating: the M1..Mm text datasets built from a vocabulary and templates.

A template has one placeholder (see resources/prompt_templates.tsv): {noun} and {article_noun}
serve both grammatical numbers, {singular} and {article_singular} only the singular, {plural}
only the plural; articles are used in the singular only ("a photo of an apple." but "a photo of
apples."). Identical templates merge and add their weights.

The multiset Mm (reference section 2): for each number (singular, plural) separately, every
noun variant is repeated by its multiplicity (the "expanded" variant list). For each template
instance (a template is used `weight` times, times the frequency of m) we draw m independent
random permutations of the expanded list and zip them into m-tuples: one row per tuple, with
the template filled by the m variants joined by " and ", each with its own article where the
template wants one. Targets are the m nouns' ids in draw order with weights 1/m. So every Mm
has exactly freq x (sum of singular multiplicities x singular template weight + sum of plural
multiplicities x plural template weight) rows.

Each (number, template, instance) block gets its own random generator, keyed by the seed, m,
the number, the template text and the instance: a fixed seed gives identical files whatever
the shard count, and holding a template out does not change the other blocks. A block is split
into contiguous pieces, one per shard (its rows are already in random order), so every shard
holds every template and every noun in equal shares; the shards are written together in one
pass, in bounded memory (one row group buffered per shard).

Held-out templates are left out of the training shards; a sample of the rows they would have
made (at most `heldout_rows`) is written to a separate evaluation file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from novic.articles import with_article
from novic.dictionary import META_THRESHOLD, nouns_fingerprint, read_nouns
from novic.io import read_metadata, sha256_json
from novic.textdata import MAX_TARGETS, TextShardWriter, text_batch

log = logging.getLogger(__name__)

NUMBERS = ("singular", "plural")
# placeholder -> (used in the singular, used in the plural, singular takes an article)
PLACEHOLDERS: dict[str, tuple[bool, bool, bool]] = {
    "noun": (True, True, False),
    "article_noun": (True, True, True),
    "singular": (True, False, False),
    "article_singular": (True, False, True),
    "plural": (False, True, False),
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEMPLATE_COLUMNS = ["collection", "weight", "template"]


@dataclasses.dataclass(frozen=True)
class Template:
    """One merged template: text with a single placeholder, and its total weight."""

    text: str
    weight: int
    prefix: str
    placeholder: str
    suffix: str

    def used_for(self, number: str) -> bool:
        """Whether the template makes rows for `number` ("singular" or "plural")."""
        return PLACEHOLDERS[self.placeholder][NUMBERS.index(number)]

    def article(self, number: str) -> bool:
        """Whether each noun gets an indefinite article in `number`."""
        return number == "singular" and PLACEHOLDERS[self.placeholder][2]

    def fill(self, *nouns: str, number: str = "singular") -> str:
        """The template filled with `nouns` (one row's text), for checks and examples."""
        if self.article(number):
            nouns = tuple(with_article(n) for n in nouns)
        return self.prefix + " and ".join(nouns) + self.suffix


def parse_template(text: str, weight: int = 1) -> Template:
    """Split a template into prefix, placeholder and suffix; append '.' if missing."""
    text = text.strip()
    if not text.endswith("."):
        text += "."
    found = _PLACEHOLDER.findall(text)
    if len(found) != 1 or found[0] not in PLACEHOLDERS:
        raise ValueError(
            f"template {text!r} must have exactly one placeholder out of "
            f"{{{'}, {'.join(PLACEHOLDERS)}}}, found {found}"
        )
    if text.count("{") != 1 or text.count("}") != 1:
        raise ValueError(f"template {text!r} has a stray brace")
    prefix, suffix = text.split("{" + found[0] + "}")
    return Template(text, weight, prefix, found[0], suffix)


def load_templates(path: str | Path, collections: Sequence[str] | None = None) -> list[Template]:
    """Read a templates TSV, keep the given collections, merge identical templates.

    Merged templates keep the order of their first occurrence; their weights add up.
    """
    rows: list[tuple[str, Template]] = []
    header_seen = False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            where = f"{path}:{lineno}"
            if not header_seen:
                if fields != TEMPLATE_COLUMNS:
                    raise ValueError(f"{where}: header must be {TEMPLATE_COLUMNS}")
                header_seen = True
                continue
            if len(fields) != 3:
                raise ValueError(f"{where}: expected 3 tab-separated fields: {line!r}")
            collection, weight, text = fields
            if not weight.isdigit() or int(weight) < 1:
                raise ValueError(f"{where}: weight must be a positive integer: {weight!r}")
            try:
                rows.append((collection, parse_template(text, int(weight))))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
    available = list(dict.fromkeys(c for c, _ in rows))
    wanted = available if collections is None else list(collections)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise ValueError(f"{path}: no template collection {missing}; it has {available}")
    merged: dict[str, Template] = {}
    for collection, template in rows:
        if collection not in wanted:
            continue
        if template.text in merged:
            old = merged[template.text]
            template = dataclasses.replace(old, weight=old.weight + template.weight)
        merged[template.text] = template
    return list(merged.values())


def template_totals(templates: Sequence[Template], number: str) -> tuple[int, int]:
    """(number of templates, total weight) used for `number`."""
    used = [t for t in templates if t.used_for(number)]
    return len(used), sum(t.weight for t in used)


@dataclasses.dataclass
class Variants:
    """The noun variants of one grammatical number, with multiplicities.

    `expanded` lists variant indices, each repeated by its multiplicity: one entry per row a
    template instance makes.
    """

    number: str
    noun_ids: np.ndarray  # int32, per variant
    bare: pa.Array  # string, per variant
    articled: pa.Array  # string, per variant: "an apple"
    expanded: np.ndarray  # int32 variant indices

    @property
    def count(self) -> int:
        return len(self.noun_ids)

    @property
    def total(self) -> int:
        return len(self.expanded)


def vocab_variants(nouns: pa.Table, source: str = "vocabulary") -> dict[str, Variants]:
    """Singular and plural variants of a noun table (schema novic.dictionary.NOUN_SCHEMA)."""
    ids = nouns.column("id").to_pylist()
    out = {}
    for number in NUMBERS:
        names = nouns.column(f"{number}s").to_pylist()
        freqs = nouns.column(f"{number}s_freq").to_pylist()
        noun_ids: list[int] = []
        bare: list[str] = []
        counts: list[int] = []
        for noun_id, variants, mults in zip(ids, names, freqs, strict=True):
            if noun_id < 1:
                raise ValueError(f"{source}: noun id {noun_id} (ids start at 1)")
            if len(variants) != len(mults):
                raise ValueError(
                    f"{source}: noun id {noun_id}: {len(variants)} {number}s but "
                    f"{len(mults)} {number}s_freq"
                )
            for variant, mult in zip(variants, mults, strict=True):
                if mult < 1 or not variant.strip():
                    raise ValueError(
                        f"{source}: noun id {noun_id}: bad {number} {variant!r} x {mult}"
                    )
                noun_ids.append(noun_id)
                bare.append(variant)
                counts.append(mult)
        index = np.arange(len(bare), dtype=np.int32)
        out[number] = Variants(
            number=number,
            noun_ids=np.asarray(noun_ids, dtype=np.int32),
            bare=pa.array(bare, pa.string()),
            articled=pa.array([with_article(v) for v in bare], pa.string()),
            expanded=np.repeat(index, np.asarray(counts, dtype=np.int64)),
        )
    return out


def multiset_rows(
    variants: Mapping[str, Variants], templates: Sequence[Template], freq: int = 1
) -> int:
    """Rows of one Mm: freq x sum over numbers of (summed multiplicity x template weight)."""
    return freq * sum(variants[n].total * template_totals(templates, n)[1] for n in NUMBERS)


@dataclasses.dataclass(frozen=True)
class Block:
    """The rows one template instance makes for one number."""

    number: str
    template: Template
    instance: int
    rows: int


def plan_blocks(
    templates: Sequence[Template], variants: Mapping[str, Variants], freq: int = 1
) -> list[Block]:
    """Every (number, template, instance) block of one Mm, in a fixed order."""
    return [
        Block(number, t, instance, variants[number].total)
        for number in NUMBERS
        for t in templates
        if t.used_for(number)
        for instance in range(t.weight * freq)
    ]


def block_rng(seed: int, m: int, block: Block) -> np.random.Generator:
    """The random generator of one block: independent of every other block."""
    key = int.from_bytes(hashlib.sha256(block.template.text.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, m, NUMBERS.index(block.number), key, block.instance])


def block_batch(
    block: Block,
    variants: Variants,
    m: int,
    seed: int,
    rows: int | None = None,
    max_targets: int = MAX_TARGETS,
) -> pa.RecordBatch:
    """The rows of `block` for Mm (the first `rows` of them, all by default).

    m independent permutations of the expanded variant list, zipped: row i uses variant
    expanded[perm_j[i]] in slot j.
    """
    rng = block_rng(seed, m, block)
    take = block.rows if rows is None else rows
    slots = [variants.expanded[rng.permutation(block.rows)[:take]] for _ in range(m)]
    strings = variants.articled if block.template.article(block.number) else variants.bare
    nouns = [pc.take(strings, s) for s in slots]
    joined = nouns[0] if m == 1 else pc.binary_join_element_wise(*nouns, " and ")
    text = pc.binary_join_element_wise(block.template.prefix, joined, block.template.suffix, "")
    targets = np.stack([variants.noun_ids[s] for s in slots], axis=1)
    weights = np.full(targets.shape, 1.0 / m, dtype=np.float32)
    return text_batch(text, targets, weights, max_targets)


def split_heldout(
    templates: Sequence[Template], heldout: Sequence[str]
) -> tuple[list[Template], list[Template]]:
    """(training templates, held-out templates); `heldout` names templates by their text."""
    by_text = {t.text: t for t in templates}
    wanted = [h.strip() if h.strip().endswith(".") else h.strip() + "." for h in heldout]
    unknown = [h for h, w in zip(heldout, wanted, strict=True) if w not in by_text]
    if unknown:
        raise ValueError(
            f"prompts.heldout: {unknown} not among the selected templates "
            "(name them exactly as in the templates file, e.g. 'a photo of {article_noun}.')"
        )
    return [t for t in templates if t.text not in wanted], [by_text[w] for w in wanted]


def _quotas(sizes: Sequence[int], limit: int) -> list[int]:
    """Split `limit` rows over blocks in proportion to their sizes (all rows if they fit)."""
    total = sum(sizes)
    if total <= limit:
        return list(sizes)
    quotas = [limit * s // total for s in sizes]
    for i in range(limit - sum(quotas)):
        quotas[i] += 1
    return quotas


def make_prompts(
    vocab: str | Path,
    templates: str | Path,
    shards: Sequence[str | Path],
    heldout: str | Path,
    m: int,
    params: Mapping[str, Any],
    max_targets: int = MAX_TARGETS,
) -> dict[str, Any]:
    """Write the training shards and the held-out set of Mm; return its statistics.

    `params` holds the config's `prompts` keys collections, seed, heldout, heldout_rows and
    fraction, and `freq`: how often Mm is made (prompts.multiset_freq[m - 1]). The training rows
    are spread over `len(shards)` files.
    """
    if not 1 <= m <= max_targets:
        raise ValueError(f"multiset size m={m} must be between 1 and {max_targets}")
    freq, seed = int(params["freq"]), int(params["seed"])
    fraction = float(params.get("fraction", 1))
    if freq < 1:
        raise ValueError(f"prompts.multiset_freq[{m - 1}] is {freq}: M{m} is not asked for")
    merged = load_templates(templates, params["collections"])
    train_templates, held_templates = split_heldout(merged, params["heldout"])
    variants = vocab_variants(read_nouns(vocab), str(vocab))

    meta = {
        "novic.artifact": "prompts",
        "novic.vocab_sha256": nouns_fingerprint(vocab),
        "novic.threshold": read_metadata(vocab).get(META_THRESHOLD, ""),
        "novic.multiset": m,
        "novic.multiset_freq": freq,
        "novic.seed": seed,
        "novic.templates_sha256": sha256_json([[t.text, t.weight] for t in merged]),
        "novic.heldout_templates": json.dumps([t.text for t in held_templates]),
    }
    blocks = plan_blocks(train_templates, variants, freq)
    keep = [math.ceil(b.rows * fraction) for b in blocks]  # all rows when fraction is 1
    total = sum(keep)
    n = len(shards)
    row_group_rows = max(8192, min(65536, (1 << 18) // n))  # bounds the buffered rows
    log.info("M%d: %d rows in %d blocks -> %d shards", m, total, len(blocks), n)
    counts = [0] * n
    with contextlib.ExitStack() as stack:
        writers = [
            stack.enter_context(
                TextShardWriter(
                    path,
                    {**meta, "novic.split": "train", "novic.shard": f"{k}/{n}"},
                    max_targets,
                    row_group_rows,
                )
            )
            for k, path in enumerate(shards)
        ]
        bar = stack.enter_context(
            tqdm(total=total, unit="rows", unit_scale=True, mininterval=2, desc=f"M{m}")
        )
        for b, (block, rows) in enumerate(zip(blocks, keep, strict=True)):
            batch = block_batch(block, variants[block.number], m, seed, rows, max_targets)
            bounds = [rows * i // n for i in range(n + 1)]
            for i in range(n):
                k = (i + b) % n  # rotate so that no shard always gets the larger pieces
                piece = batch.slice(bounds[i], bounds[i + 1] - bounds[i])
                writers[k].write(piece)
                counts[k] += piece.num_rows
            bar.update(rows)

    held_blocks = plan_blocks(held_templates, variants, freq)
    quotas = _quotas([b.rows for b in held_blocks], int(params["heldout_rows"]))
    with TextShardWriter(heldout, {**meta, "novic.split": "heldout"}, max_targets) as writer:
        for block, quota in zip(held_blocks, quotas, strict=True):
            if quota:
                writer.write(block_batch(block, variants[block.number], m, seed, quota))
        held_rows = writer.rows

    stats: dict[str, Any] = {
        "threshold": meta["novic.threshold"],
        "m": m,
        "multiset_freq": freq,
        "seed": seed,
        "fraction": fraction,
        "rows": total,
        "shard_rows": counts,
        "heldout_rows": held_rows,
        "heldout_templates": [t.text for t in held_templates],
        "templates": {},
        "variants": {},
    }
    for number in NUMBERS:
        count, weight = template_totals(train_templates, number)
        stats["templates"][number] = {"count": count, "weight": weight}
        v = variants[number]
        stats["variants"][number] = {"count": v.count, "multiplicity_sum": v.total}
    return stats
