"""Benchmark class lists: reading them, their nouns, the frequency floor and their coverage.

A class-list file has one class per line, its names separated by commas, `#` comments. The first
name is the class's label (what zero-shot prompts and tables use); a label that combines names
("bell or wind chime", "cardboard box / carton", "kite (bird of prey)") is not a noun itself, so
the file lists the nouns it stands for as further names of the row.

Two kinds of list feed the noun dictionary (reference section 1): the names of an *object* list
(`nouns.class_lists`) are nouns, added when WordNet's selection lacks them and floored; a
*general* list (`nouns.general_lists`) only floors the nouns the dictionary already has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from novic.forms import canonical

# A label combining several names: an alternative ("or", a slash) or a parenthetical qualifier.
_LABEL = re.compile(r"\sor\s|/|[()]")


def read_class_list(path: str | Path) -> list[list[str]]:
    """Rows of synonyms from a class-name file (one class per line, commas between synonyms)."""
    rows = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise ValueError(f"{path}:{number}: no class name in {raw!r}")
        rows.append(names)
    return rows


def is_label(name: str) -> bool:
    """Whether a class name combines names ("a or b", "a / b", "a (b)") rather than being one."""
    return bool(_LABEL.search(name))


def class_nouns(row: Sequence[str]) -> list[str]:
    """The names of a class that are nouns: not combining labels, with a canonical form."""
    return [name for name in row if not is_label(name) and canonical(name) is not None]


def variant_index(nouns: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Canonical form of each variant -> its noun's target, from (target, variants) pairs.

    A target is its own key first, so a variant shared with another noun's target ("glasses"
    as a plural of "glass") still names the noun "glasses".
    """
    pairs = list(nouns)
    index = {target: target for target, _ in pairs}
    for target, variants in pairs:
        for variant in variants:
            key = canonical(variant)
            if key is not None:
                index.setdefault(key, target)
    return index


def row_targets(row: Sequence[str], index: Mapping[str, str]) -> list[str]:
    """The distinct nouns (targets of `index`) that the names of a class stand for."""
    found = (index.get(canonical(name) or "") for name in class_nouns(row))
    return list(dict.fromkeys(target for target in found if target is not None))


def floor_base(rows: Sequence[object], ranked: Sequence[float]) -> float:
    """The floor of a list of N classes: the frequency of the N-th most frequent noun."""
    return ranked[min(len(rows), len(ranked)) - 1] if ranked else 0.0


def class_list_floors(
    rows: Sequence[Sequence[str]], ranked: Sequence[float], index: Mapping[str, str]
) -> dict[str, float]:
    """Frequency floors of the nouns of a class list of N rows (noun target -> floor).

    Every noun a row names gets the frequency of the N-th most frequent noun (`ranked` is
    sorted in descending order), divided by the number of distinct nouns the row names.
    """
    base = floor_base(rows, ranked)
    floors: dict[str, float] = {}
    for row in rows:
        targets = row_targets(row, index)
        for target in targets:
            floors[target] = max(floors.get(target, 0.0), base / len(targets))
    return floors


def coverage(rows: Sequence[Sequence[str]], index: Mapping[str, str]) -> float:
    """The share of classes with at least one noun name in `index` (a vocabulary's variants)."""
    if not rows:
        return 0.0
    return sum(bool(row_targets(row, index)) for row in rows) / len(rows)
