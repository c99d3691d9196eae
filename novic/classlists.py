"""Benchmark class lists: reading them and the frequency floor their nouns get."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from novic.forms import canonical


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


def class_list_floors(rows: Sequence[Sequence[str]], ranked: Sequence[float]) -> dict[str, float]:
    """Frequency floors for the canonical forms of a class list of N rows.

    Every name of a row gets the frequency of the N-th most frequent noun (`ranked` is sorted
    in descending order), divided by the number of names in the row.
    """
    if not ranked:
        return {}
    base = ranked[min(len(rows), len(ranked)) - 1]
    floors: dict[str, float] = {}
    for row in rows:
        for name in row:
            target = canonical(name)
            if target is not None:
                floors[target] = max(floors.get(target, 0.0), base / len(row))
    return floors
