"""WordNet synset selection: the rules file and which noun synsets count as objects.

Selection is by inclusion. The lexnames (lexicographer files) of the config only say which
synsets are candidates; a candidate is selected only where a rule of the rules file takes it in:

    E  exclude this synset                      I  include this synset
    N  exclude the synset's subtree              Y  include the synset's subtree

Precedence is E > I > Y > N. Subtree rules are inherited along hypernym (and instance-hypernym)
links, and on each path from a synset up to the root the rule nearest the synset applies, so a
deeper rule overrides a higher one. A synset that inherits Y along one path and N along another
is selected: it is a kind of something the rules take in (a garment is a covering as well as a
commodity). Single synsets are left out with E, which nothing overrides.

Subtree rules decide only among candidates: synsets whose lexname is one of the configured
lexnames and that are not named instances (unless instances are allowed). I takes in the synset
it names whatever its lexname or kind, since naming one synset is deliberate: that is how the
object roots that WordNet files under noun.Tops (person, animal, plant, food) come in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULE_TAGS = frozenset("EIYN")
SUBTREE_TAGS = frozenset("YN")
CONFLICTING_TAGS = (frozenset("EI"), frozenset("YN"))


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
        tags, name = frozenset(parts[0]), parts[1]
        for pair in CONFLICTING_TAGS:
            if pair <= tags:
                first, second = sorted(pair)
                raise RulesError(f"{path}:{number}: {first} and {second} contradict each other")
        if not re.fullmatch(r".+\.n\.\d\d", name):
            raise RulesError(f"{path}:{number}: {name!r} is not a noun synset name like dog.n.01")
        if name in rules:
            raise RulesError(
                f"{path}:{number}: {name} already has a rule on line {rules[name].line}"
            )
        rules[name] = Rule(tags, number)
    return rules


def select_synsets(
    names: Iterable[str],
    parents: Callable[[str], Sequence[str]],
    lexname: Callable[[str], str],
    lexnames: Iterable[str],
    rules: Mapping[str, Rule],
    is_instance: Callable[[str], bool] = lambda name: False,
    instances: bool = False,
) -> list[str]:
    """The synsets among `names` that the rules include, in their order (see the module doc).

    `parents` gives a synset's hypernyms and instance hypernyms, `lexname` its lexicographer
    file ("noun.animal"); `lexnames` are the candidate lexnames without the "noun." prefix.
    Instances (named individuals) are candidates only when `instances` is true.
    """
    allowed = {f"noun.{name}" for name in lexnames}
    inherited: dict[str, frozenset[str]] = {}

    def subtree_rules(name: str) -> frozenset[str]:  # the nearest Y/N rules over all paths
        if name not in inherited:
            own = rules[name].tags & SUBTREE_TAGS if name in rules else frozenset()
            inherited[name] = own or frozenset().union(*map(subtree_rules, parents(name)))
        return inherited[name]

    def keep(name: str) -> bool:
        tags = rules[name].tags if name in rules else frozenset()
        if "E" in tags:
            return False
        if "I" in tags:
            return True
        if lexname(name) not in allowed or (is_instance(name) and not instances):
            return False
        return "Y" in subtree_rules(name)

    return [name for name in names if keep(name)]


def select_wordnet_synsets(
    reader: Any, rules: Mapping[str, Rule], lexnames: Iterable[str], instances: bool = False
) -> list[str]:
    """`select_synsets` over every noun synset of an nltk WordNet reader, in its order.

    `rules` must hold canonical synset names (see `resolve_rules`).
    """
    from novic.wordnet import parents

    synsets = {s.name(): s for s in reader.all_synsets("n")}
    return select_synsets(
        synsets,
        lambda n: [p.name() for p in parents(synsets[n])],
        lambda n: synsets[n].lexname(),
        lexnames,
        rules,
        lambda n: bool(synsets[n].instance_hypernyms()),
        instances,
    )


def resolve_rules(rules: Mapping[str, Rule], lookup: Callable[[str], str], path: str) -> dict:
    """Map each rule to its synset's canonical name; unknown synsets, and two rules for one
    synset under different names, are errors naming the lines."""
    resolved: dict[str, Rule] = {}
    for name, rule in rules.items():
        try:
            canonical = lookup(name)
        except Exception as error:  # nltk raises WordNetError or ValueError
            raise RulesError(f"{path}:{rule.line}: unknown synset {name} ({error})") from None
        if canonical in resolved:
            raise RulesError(
                f"{path}:{rule.line}: {name} is {canonical}, which already has a rule on line "
                f"{resolved[canonical].line}"
            )
        resolved[canonical] = rule
    return resolved
