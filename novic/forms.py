"""Surface and canonical forms of nouns, and their plurals.

The canonical form is what the decoder outputs; surface forms are what prompts and captions use.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol


class HasVariants(Protocol):
    singulars: list[str]
    plurals: list[str]


def canonical(form: str) -> str | None:
    """The canonical form the decoder outputs, or None if the form has none.

    Lowercase, accents folded, `'` and `.` removed, split on whitespace, `-` and `/` and joined
    with single spaces; only [a-z0-9 ] and at least two characters.
    """
    text = unicodedata.normalize("NFKD", form)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("'", "").replace(".", "")
    text = " ".join(part for part in re.split(r"[\s/-]+", text) if part)
    return text if len(text) >= 2 and re.fullmatch(r"[a-z0-9 ]+", text) else None


_SPACED_INITIALS = re.compile(r"\b([A-Za-z])\. (?=[A-Za-z]\.)")


def surface_forms(lemma_name: str) -> list[str]:
    """Surface forms of a WordNet lemma name: the name, then its dot-less/apostrophe-less forms.

    "U._S._A." -> ["U.S.A.", "USA"]; "St._John's_wort" -> ["St. John's wort", "St John's wort",
    "St. Johns wort", "St Johns wort"].
    """
    name = " ".join(lemma_name.replace("_", " ").split())
    name = _SPACED_INITIALS.sub(r"\1.", name)
    forms = [
        name,
        name.replace(".", ""),
        name.replace("'", ""),
        name.replace(".", "").replace("'", ""),
    ]
    return list(dict.fromkeys(f for f in forms if f.strip()))


class Pluralizer:
    """Plural forms: WordNet's irregular plurals first, then `inflect` for regular ones.

    A regular plural is made only for a form whose last word is lowercase (proper names and
    Latin genus names have none) and kept only if `attested(plural)`, so mass nouns and
    already-plural lemmas ("trousers") do not get invented plurals.
    """

    def __init__(
        self, exceptions: Mapping[str, Sequence[str]], attested: Callable[[str], bool]
    ) -> None:
        self.irregular: dict[str, list[str]] = {}
        for plural, singulars in exceptions.items():
            for singular in singulars:
                forms = self.irregular.setdefault(singular.replace("_", " "), [])
                if plural.replace("_", " ") not in forms:
                    forms.append(plural.replace("_", " "))
        self.attested = attested
        import inflect  # 2 s to import: only the noun stage needs it, not every user of canonical()

        self.engine = inflect.engine()

    def __call__(self, singular: str) -> list[str]:
        if singular in self.irregular:
            return list(self.irregular[singular])
        head = singular.split()[-1]
        if not head.isalpha() or not head.islower():
            return []
        plural = self.engine.plural_noun(singular)
        if not plural or plural == singular or not self.attested(plural):
            return []
        return [plural]


def add_plurals(nouns: Iterable[HasVariants], pluralize: Callable[[str], list[str]]) -> None:
    """Fill each noun's plural variants from its singular ones."""
    for noun in nouns:
        for singular in noun.singulars:
            for plural in pluralize(singular):
                if plural not in noun.plurals and plural not in noun.singulars:
                    noun.plurals.append(plural)
