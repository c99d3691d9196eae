"""Word frequencies of nouns and the reference's log multiplicities."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import wordfreq

from novic.forms import canonical

MIN_FREQ = 2.5e-6  # frequencies (relative to "the") below this count as this
MULT_SCALE = 1.5  # multiplicity = 1 + MULT_SCALE * ln(f / MIN_FREQ)


class WordFrequency:
    """Word frequencies from `wordfreq`, relative to the frequency of "the".

    wordfreq estimates a phrase as if its words always occurred together (a harmonic mean of
    their frequencies), which rates compounds such as "police dog" or "so-and-so" as common as
    their words. A phrase of k tokens (wordfreq's, so hyphens split) is therefore divided by
    `phrase_penalty ** (k - 1)`.
    """

    def __init__(self, phrase_penalty: float = 100.0, lang: str = "en") -> None:
        self.phrase_penalty = phrase_penalty
        self.lang = lang
        self.the = wordfreq.word_frequency("the", lang)
        self._tokens = cache(lambda text: tuple(wordfreq.tokenize(text, lang)))

    def __call__(self, text: str) -> float:
        tokens = len(self._tokens(text))
        return (
            wordfreq.word_frequency(text, self.lang)
            / self.the
            / self.phrase_penalty ** max(tokens - 1, 0)
        )

    def total(self, forms: Iterable[str]) -> float:
        """Summed frequency of forms, counting forms that wordfreq reads alike only once."""
        seen: dict[tuple[str, ...], float] = {}
        for form in forms:
            seen.setdefault(self._tokens(form), self(form))
        return sum(seen.values())


def sense_share(senses: Iterable[tuple[bool, int]], smoothing: float = 1.0) -> float:
    """The share of a word's usage that falls on its selected (object) noun senses.

    `senses` holds (selected, usage count) for every sense of the word in every part of speech;
    counts come from WordNet's sense-tagged corpus, with `smoothing` added to each (most are 0).
    "dog" keeps ~0.9 of its frequency; "have" (a rich person, but mostly a verb) keeps ~0.0005.
    """
    selected = total = 0.0
    for is_selected, count in senses:
        total += count + smoothing
        selected += (count + smoothing) if is_selected else 0.0
    return selected / total if total else 1.0


def read_word_list(path: str | Path) -> set[str]:
    """Words of a one-word-per-line file (`#` comments), as canonical forms."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    words = (canonical(line.split("#", 1)[0].strip()) for line in lines)
    return {word for word in words if word}


def multiplicity(frequency: float) -> float:
    """The reference's log multiplicity 1 + 1.5 ln(f / 2.5e-6), at least 1 (unrounded)."""
    return 1.0 + MULT_SCALE * math.log(max(frequency, MIN_FREQ) / MIN_FREQ)


def split_multiplicity(total: int, weights: Sequence[float]) -> list[int]:
    """Split a noun's multiplicity over its variants in proportion to `weights`, each >= 1."""
    scale = total / sum(weights)
    return [max(round(w * scale), 1) for w in weights]
