"""Word frequencies of nouns and the reference's log multiplicities.

The reference counted nouns in Norvig's Google Web 1T unigram and bigram counts (`count_1w`,
`count_2w`), relative to "the". This project reads single words from `wordfreq`, scaled to the
Web 1T level, and two-word phrases from the Web 1T bigram counts themselves (the `wordsegment`
package ships them); see docs/nouns.md, "Frequencies and multiplicities".
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

import wordfreq

from novic.forms import canonical

MIN_FREQ = 2.5e-6  # frequencies (relative to "the") below this count as this
MULT_SCALE = 1.5  # multiplicity = 1 + MULT_SCALE * ln(f / MIN_FREQ)


class HomographError(ValueError):
    """A malformed homographs file; the message names the file and line."""


def web1t_bigrams() -> tuple[dict[str, float], float]:
    """Google Web 1T bigram frequencies relative to "the", and the smallest count kept.

    Norvig's `count_2w.txt` (the 286k most common bigrams, lowercased, punctuation removed) and
    the count of "the" from `count_1w.txt`, as shipped by the `wordsegment` package. Bigrams
    that differ only in case are summed, as the reference did. A bigram missing from the table
    occurred fewer times than its smallest count (100,000, i.e. 4.3e-6 of "the").
    """
    files = importlib.resources.files("wordsegment")
    with (files / "unigrams.txt").open(encoding="utf-8") as stream:
        word, count = stream.readline().split("\t")
    if word != "the":
        raise ValueError(f"wordsegment's unigrams.txt does not start with 'the': {word!r}")
    the = float(count)
    counts: dict[str, float] = {}
    for line in (files / "bigrams.txt").read_text(encoding="utf-8").splitlines():
        bigram, count = line.split("\t")
        counts[bigram] = counts.get(bigram, 0.0) + float(count)
    floor = min(counts.values())
    return {bigram: count / the for bigram, count in counts.items()}, floor / the


class WordFrequency:
    """Frequencies of words and phrases relative to "the", on the Web 1T scale.

    - A single word: its `wordfreq` frequency relative to "the", times `scale` (wordfreq's
      sources use "the" more often than the web pages of Web 1T, so nouns come out lower).
    - A two-word phrase found in `bigrams` (phrase -> frequency): that frequency. One missing
      from it is estimated as below, but at most `bigram_floor` (the table's smallest entry).
    - Any other phrase of k tokens: wordfreq's phrase frequency (a harmonic mean of its words'
      frequencies, as if they always occurred together), times `scale`, divided by
      `phrase_penalty ** (k - 1)`.

    Tokens are wordfreq's, so hyphens split ("so-and-so" has three).
    """

    def __init__(
        self,
        scale: float = 1.0,
        phrase_penalty: float = 1000.0,
        bigrams: Mapping[str, float] | None = None,
        bigram_floor: float = 0.0,
        lang: str = "en",
    ) -> None:
        self.scale = scale
        self.phrase_penalty = phrase_penalty
        self.bigrams = bigrams
        self.bigram_floor = bigram_floor
        self.lang = lang
        self.the = wordfreq.word_frequency("the", lang)
        self._tokens = cache(lambda text: tuple(wordfreq.tokenize(text, lang)))

    def __call__(self, text: str) -> float:
        tokens = self._tokens(text)
        estimate = (
            wordfreq.word_frequency(text, self.lang)
            / self.the
            * self.scale
            / self.phrase_penalty ** max(len(tokens) - 1, 0)
        )
        if self.bigrams is None or len(tokens) != 2:
            return estimate
        found = self.bigrams.get(" ".join(t.replace("'", "").replace(".", "") for t in tokens))
        return found if found is not None else min(estimate, self.bigram_floor)

    def total(
        self, forms: Iterable[str], share: Callable[[str], float] = lambda form: 1.0
    ) -> float:
        """Summed frequency of forms, each times its `share`, counting forms that wordfreq
        reads alike only once."""
        seen: dict[tuple[str, ...], float] = {}
        for form in forms:
            seen.setdefault(self._tokens(form), self(form) * share(form))
        return sum(seen.values())


DROP = "drop"  # the share of a homograph that names no noun at all


def read_homographs(path: str | Path) -> dict[str, float | None]:
    """Homograph shares: canonical form -> the share of its frequency that is the noun.

    One entry per line, `form  share  # why`: the form (it may contain spaces) and a share
    between 0 and 1 (0: the form counts the minimum frequency), or `drop` (None here: the form
    names no noun, see `novic.nouns.drop_forms`). Blank lines and `#` comments are ignored.
    Errors name the file and line.
    """
    shares: dict[str, float | None] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        form, _, value = text.rpartition(" ")
        try:
            share = None if value == DROP else float(value)
        except ValueError:
            share = math.nan
        if not form.strip() or (share is not None and not 0.0 <= share <= 1.0):
            raise HomographError(
                f"{path}:{number}: expected 'form share' with a share between 0 and 1 or "
                f"{DROP!r}, got {raw.strip()!r}"
            )
        target = canonical(form.strip())
        if target is None:
            raise HomographError(f"{path}:{number}: {form.strip()!r} has no canonical form")
        if target in shares:
            raise HomographError(
                f"{path}:{number}: {target!r} already listed on line {lines[target]}"
            )
        shares[target], lines[target] = share, number
    return shares


def form_shares(
    singulars: Iterable[str],
    plurals: Iterable[str],
    homographs: Mapping[str, float | None],
    pluralize: Callable[[str], list[str]],
) -> dict[str, float]:
    """The homograph share of each listed form of a noun (forms not returned count fully).

    A listed singular passes its share on to the plurals made from it ("needs" is mostly the
    verb, like "need"); a plural listed itself keeps its own entry.
    """
    shares: dict[str, float] = {}
    for singular in singulars:
        share = homographs.get(canonical(singular) or "")
        if share is not None:  # dropped forms (None) are gone before frequencies
            shares[singular] = share
            for plural in pluralize(singular):
                shares.setdefault(plural, share)
    for plural in plurals:
        share = homographs.get(canonical(plural) or "")
        if share is not None:
            shares[plural] = share
    return shares


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


def multiplicity(frequency: float) -> float:
    """The reference's log multiplicity 1 + 1.5 ln(f / 2.5e-6), at least 1 (unrounded)."""
    return 1.0 + MULT_SCALE * math.log(max(frequency, MIN_FREQ) / MIN_FREQ)


def split_multiplicity(total: int, weights: Sequence[float]) -> list[int]:
    """Split a noun's multiplicity over its variants in proportion to `weights`, each >= 1."""
    scale = total / sum(weights)
    return [max(round(w * scale), 1) for w in weights]
