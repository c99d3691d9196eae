"""WordNet synset selection: the rules file and which noun synsets count as objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

RULE_TAGS = frozenset("EIYN")
ROOT_SYNSET = "entity.n.01"


class RulesError(ValueError):
    """A malformed or unknown entry in the synset rules file (the message names file and line)."""


@dataclass(frozen=True)
class Rule:
    tags: frozenset[str]
    line: int


def parse_rules(path: str | Path) -> dict[str, Rule]:
    """Read a rules file: `TAGS synset.pos.nn` per line, `#` comments, tags from E, I, Y, N."""
    rules: dict[str, Rule] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not parts[0] or set(parts[0]) - RULE_TAGS:
            raise RulesError(
                f"{path}:{number}: expected 'TAGS synset' with TAGS from E, I, Y, N, got {raw!r}"
            )
        tags, name = parts
        if not re.fullmatch(r".+\.n\.\d\d", name):
            raise RulesError(f"{path}:{number}: {name!r} is not a noun synset name like dog.n.01")
        if name in rules:
            raise RulesError(
                f"{path}:{number}: {name} already has a rule on line {rules[name].line}"
            )
        rules[name] = Rule(frozenset(tags), number)
    return rules


def select_synsets(
    names: Iterable[str],
    parents: Callable[[str], Sequence[str]],
    lexname: Callable[[str], str],
    lexnames: Iterable[str],
    rules: Mapping[str, Rule],
    is_instance: Callable[[str], bool] = lambda name: False,
    skip_instances: Iterable[str] = (),
) -> list[str]:
    """The object synsets among `names`, in their order.

    A synset is kept when its lexname is in `lexnames` (given without the "noun." prefix) and
    it is not an instance (a named individual) of a lexname in `skip_instances`, unless a rule
    decides: E (exclude it) > I (include it) > Y (include its subtree) >
    N (exclude its subtree). A subtree rule closer to the synset overrides one further up;
    a synset that inherits both Y and N through different hypernym paths is included.
    """
    allowed = {f"noun.{name}" for name in lexnames}
    skipped = {f"noun.{name}" for name in skip_instances}
    subtree: dict[str, str | None] = {}

    def mark(name: str) -> str | None:  # "Y", "N" or None: the subtree rule that applies
        if name not in subtree:
            tags = rules[name].tags if name in rules else frozenset()
            if "Y" in tags or "N" in tags:
                subtree[name] = "Y" if "Y" in tags else "N"
            else:
                inherited = {mark(p) for p in parents(name)}
                subtree[name] = "Y" if "Y" in inherited else "N" if "N" in inherited else None
        return subtree[name]

    def keep(name: str) -> bool:
        tags = rules[name].tags if name in rules else frozenset()
        if "E" in tags:
            return False
        if "I" in tags:
            return True
        inherited = mark(name)
        if inherited is not None:
            return inherited == "Y"
        kind = lexname(name)
        return kind in allowed and not (kind in skipped and is_instance(name))

    return [name for name in names if name != ROOT_SYNSET and keep(name)]


def resolve_rules(rules: Mapping[str, Rule], lookup: Callable[[str], str], path: str) -> dict:
    """Map each rule to its synset's canonical name; unknown synsets are errors naming the line."""
    resolved: dict[str, Rule] = {}
    for name, rule in rules.items():
        try:
            resolved[lookup(name)] = rule
        except Exception as error:  # nltk raises WordNetError or ValueError
            raise RulesError(f"{path}:{rule.line}: unknown synset {name} ({error})") from None
    return resolved
