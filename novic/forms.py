"""Surface and canonical forms of nouns, their spelling variants, and their plurals.

The canonical form is what the decoder outputs; surface forms are what prompts and captions use.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any


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


# --- Spelling variants -------------------------------------------------------------------------


@cache
def _british_to_american() -> Mapping[str, str]:
    from breame.data.spelling_constants import BRITISH_ENGLISH_SPELLINGS

    return BRITISH_ENGLISH_SPELLINGS


def american(target: str) -> str:
    """A canonical form with each British-spelled word in its American spelling (breame's
    word list): "colour television" -> "color television", "aeroplane" -> "airplane"."""
    spelling = _british_to_american()
    return " ".join(spelling.get(word, word) for word in target.split())


def merge_key(target: str) -> str:
    """What spelling variants of a canonical form share: American spelling, no spaces.

    "hot dog" (also "hot-dog"), "hotdog" -> "hotdog"; "aeroplane", "airplane" -> "airplane".
    Case is already folded by `canonical`.
    """
    return american(target).replace(" ", "")


# --- Plurals -----------------------------------------------------------------------------------

_WORDS = re.compile(r"[\s-]+")
# WordNet glosses of senses named in the plural: "(usually plural)", "(usually used in the
# plural)", "(often used in the plural)", "(plural)".
_PLURAL_GLOSS = re.compile(r"\((?:usually |often )?(?:used )?(?:in the )?plural\)")


def _words(phrase: str) -> list[str]:
    return [w for w in _WORDS.split(phrase) if w]


def _replace_word(phrase: str, index: int, word: str) -> str:
    """`phrase` with its index-th word (words split on spaces and hyphens) replaced."""
    parts = re.split(r"([\s-]+)", phrase)
    words = [i for i, part in enumerate(parts) if part and not _WORDS.fullmatch(part)]
    parts[words[index]] = word
    return "".join(parts)


class Pluralizer:
    """Grammatical number of noun forms: their plurals, and which lemmas are plural-only.

    A plural is made for the head word of a form (the word `inflect` inflects: "police dog" ->
    "dogs", "mother-in-law" -> "mothers") only where that word is lowercase, so proper names
    and Latin genus names get none. Candidates are WordNet's noun.exc irregular plurals,
    `inflect`'s (modern, anglicised) plural and `lemminflect`'s dictionary plurals; the plural
    equals the singular only where `inflect` says so ("deer", "sheep", "aircraft"). Of the
    candidates `frequency` attests, those whose frequency is at least `keep_fraction` of the
    most frequent one are kept, most frequent first: "cameras" not "camerae", "buses" not
    "busses", "peas" not "pease", "cacti" and not "cactuses".

    A candidate is dropped when it is another word's form (`other_reading`, e.g. from
    WordNet: "does" is a form of the verb "do", "species" and "cola" are nouns of their own)
    and more than `steal_ratio` times as frequent as the singular: its frequency belongs to
    that other word ("doe"/"does", "specie"/"species"). Collisions with nouns of the
    dictionary itself are resolved per noun by `novic.nouns.add_plurals`.

    `plural_only` holds head words that are plural-only nouns (pluralia tantum: "jeans",
    "scissors"); they get no plural. `reader` (an nltk WordNet reader) lets
    `plural_only_form` find more from WordNet itself and gives the default `other_reading`.
    """

    def __init__(
        self,
        exceptions: Mapping[str, Sequence[str]],
        frequency: Callable[[str], float],
        *,
        plural_only: Collection[str] = frozenset(),
        reader: Any = None,
        other_reading: Callable[[str, str], bool] | None = None,
        keep_fraction: float = 0.25,
        steal_ratio: float = 10.0,
    ) -> None:
        self.irregular: dict[str, list[str]] = {}  # singular -> noun.exc plurals
        self.singular: dict[str, list[str]] = {}  # noun.exc plural -> singulars
        for plural, singulars in exceptions.items():
            plural = plural.replace("_", " ")
            for singular in singulars:
                singular = singular.replace("_", " ")
                forms = self.irregular.setdefault(singular, [])
                if plural not in forms:
                    forms.append(plural)
                self.singular.setdefault(plural, []).append(singular)
        self.frequency = cache(frequency)
        self.plural_only = frozenset(plural_only)
        self.reader = reader
        if other_reading is not None:
            self.other_reading = other_reading
        self.keep_fraction = keep_fraction
        self.steal_ratio = steal_ratio
        # 2 s to import: only the noun stage needs them, not every user of canonical()
        import inflect
        import lemminflect

        self.engine = inflect.engine()
        self.lemminflect = lemminflect
        self._inflect = cache(self._inflect_uncached)
        self.word_plurals = cache(self._word_plurals)

    def _inflect_uncached(self, phrase: str) -> str:
        return self.engine.plural_noun(phrase) or phrase

    def head_index(self, phrase: str) -> int | None:
        """Index of the word that `inflect` pluralizes (words split on spaces and hyphens)."""
        words = _words(phrase)
        if not words:
            return None
        inflected = _words(self._inflect(phrase))
        if len(inflected) != len(words):
            return None
        changed = [i for i, (a, b) in enumerate(zip(words, inflected, strict=True)) if a != b]
        if not changed:
            return len(words) - 1  # an invariant head ("red deer")
        return changed[0] if len(changed) == 1 else None

    def candidates(self, word: str) -> list[str]:
        """Every plural of a word that a source knows, attested or not."""
        found = [*self.irregular.get(word, []), self._inflect(word)]
        found += self.lemminflect.getAllInflections(word, upos="NOUN").get("NNS", ())
        identical = self._inflect(word) == word
        return [p for p in dict.fromkeys(found) if p != word or identical]

    def _word_plurals(self, word: str) -> tuple[tuple[float, str], ...]:
        """(frequency, plural) of a word's attested, not stolen candidates, most frequent first;
        WordNet's irregular plurals if none is attested."""
        if word in self.plural_only:
            return ()
        own = self.frequency(word)
        scored = []
        for plural in self.candidates(word):
            freq = self.frequency(plural)
            if freq <= 0:
                continue
            if (
                plural != word
                and freq > self.steal_ratio * own
                and self.other_reading(plural, word)
            ):
                continue
            scored.append((freq, plural))
        if not scored:  # only WordNet's, if none is attested ("larynges": rare, but English)
            scored = [(0.0, plural) for plural in self.irregular.get(word, [])]
        return tuple(sorted(scored, key=lambda p: -p[0]))

    def __call__(self, singular: str, taken: Container[str] = ()) -> list[str]:
        """Plurals of a singular surface form, most frequent first ([] if it has none).

        Candidates whose canonical form is in `taken` (other nouns' names) are left out before
        the most frequent one is chosen: "colons", not "cola".
        """
        words = _words(singular)
        head = self.head_index(singular)
        scored: list[tuple[float, str]] = []
        if head is not None and words[head].isalpha() and words[head].islower():
            scored = [
                (freq, _replace_word(singular, head, plural))
                for freq, plural in self.word_plurals(words[head])
            ]
        scored = [(f, p) for f, p in scored if canonical(p) not in taken]
        if scored:
            best = scored[0][0]
            scored = [(f, p) for f, p in scored if f >= self.keep_fraction * best]
        found = [p for _, p in scored]
        if len(words) > 1:
            found += [
                p
                for p in self.irregular.get(singular, [])
                if self.frequency(p) > 0 and canonical(p) not in taken
            ]
        return list(dict.fromkeys(found))

    def known_singular(self, word: str) -> bool:
        """Whether `lemminflect` knows the word as a singular with a plural of its own."""
        known = self.lemminflect.getAllInflections(word, upos="NOUN")
        return known.get("NN") == (word,) and any(p != word for p in known.get("NNS", ()))

    def is_plural_only(self, form: str) -> bool:
        """Whether a form's head word is a plural-only noun ("blue jeans", "Jockey shorts")."""
        words = _words(form)
        head = self.head_index(form)
        return head is not None and words[head] in self.plural_only

    def keeps_name(self, form: str) -> bool:
        """Whether a noun named `form` keeps that name where it is also another noun's plural:
        a plural-only word of `plural_only` ("glasses", not glass's plural) or a singular with
        a plural of its own ("cola", not colon's plural). Other plural-looking names ("arms",
        "oxen") are the other noun's plural."""
        words = _words(form)
        head = self.head_index(form)
        if head is None:
            return False
        return words[head] in self.plural_only or self.known_singular(words[head])

    # --- with WordNet -------------------------------------------------------------------------

    def _senses(self, lemma: str) -> Iterable[list[str]]:
        """The lowercase lemma names of every synset (any part of speech) that names `lemma`."""
        for pos, offsets in self.reader._lemma_pos_offset_map.get(lemma, {}).items():
            for offset in offsets:
                synset = self.reader.synset_from_pos_and_offset(pos, offset)
                yield [name.lower() for name in synset.lemma_names()]

    def other_reading(self, plural: str, singular: str) -> bool:
        """Whether `plural` can be another word: WordNet has it, or a word it inflects (any
        part of speech), in a synset without `singular` ("does" -> the verb "do")."""
        if self.reader is None:
            return False
        key, own = plural.lower().replace(" ", "_"), singular.lower().replace(" ", "_")
        bases = {key}.union(*(self.reader._morphy(key, pos) for pos in ("n", "v", "a", "r")))
        return any(own not in names for base in bases - {own} for names in self._senses(base))

    def _is_noun_lemma(self, word: str) -> bool:
        """Whether WordNet has `word` as a noun lemma, in this case ("juda" is not: "Juda")."""
        offsets = self.reader._lemma_pos_offset_map.get(word.lower(), {}).get("n", [])
        return any(
            word in self.reader.synset_from_pos_and_offset("n", offset).lemma_names()
            for offset in offsets
        )

    def _plural_of_other_lemma(self, word: str, synset_lemmas: Collection[str]) -> bool:
        """Whether `word` is the plural of another lowercase WordNet noun that the synset does
        not name ("arms" of "arm" in weaponry.n.01, but not "braces" in brace.n.07)."""
        if not word.endswith("s") or self.reader is None:
            return False
        lemmas = self.lemminflect.getAllLemmas(word, upos="NOUN").get("NOUN", ())
        if self.known_singular(word) or lemmas == (word,):
            return False  # a singular ("genus" -> "genera"; "shambles")
        # noun.exc and lemminflect know irregular plurals; inflect guesses ("sis" -> "si"), so
        # its singular must be a word of 4 letters or more
        singulars = set(self.singular.get(word, [])) | set(lemmas)
        guess = self.engine.singular_noun(word)
        if guess and len(guess) >= 4:
            singulars.add(guess)
        for singular in singulars - {word}:
            if (
                singular.isalpha()
                and singular.islower()
                and self._is_noun_lemma(singular)
                and word in self.candidates(singular)
                and not any(name.split("_")[-1] == singular for name in synset_lemmas)
            ):
                return True
        return False

    def plural_only_form(
        self, lemma_name: str, synset_lemmas: Sequence[str], gloss: str = ""
    ) -> str | None:
        """The plural-only name of a lemma in a synset, or None if the lemma is singular.

        Plural-only: a head word in `plural_only`; a lemma X of a synset that also has
        "pair_of_X" ("scissors", "pliers"); a plural-looking lemma that is the plural of another
        WordNet noun which the synset does not name ("glasses" in spectacles.n.01, "arms" in
        weaponry.n.01, "shorts"), unless it is a Latin binomial ("Zea mays"). A singular lemma
        of a synset glossed "(usually plural)" or with "pair_of_<plural>", whose plural is
        plural-only, is named by that plural: "jean" in jean.n.01 -> "jeans", "tweezer" ->
        "tweezers".
        """
        name = " ".join(lemma_name.replace("_", " ").split())
        words = _words(name)
        if not words:
            return None
        lemmas = {n.lower() for n in synset_lemmas}
        pairs = {n[len("pair_of_") :] for n in lemmas if n.startswith("pair_of_")}
        marked = bool(pairs) or bool(_PLURAL_GLOSS.search(gloss))
        last = words[-1]
        if not (last in self.plural_only or last.endswith("s") or marked):
            return None  # the common case, without inflecting anything
        head = self.head_index(name)
        if head is None:
            return None
        word = words[head]
        if not (word.isalpha() and word.islower()):
            return None
        if word in self.plural_only or word in pairs:
            return name
        if marked and head == len(words) - 1:
            for plural in self.candidates(word):
                if plural in self.plural_only or plural in pairs:
                    return _replace_word(name, head, plural)
        binomial = len(words) > 1 and words[0][:1].isupper() and self.reader is not None
        if binomial and self._is_noun_lemma(f"genus_{words[0].lower()}"):
            return None  # a binomial: "Zea mays", "Pan troglodytes"
        if self._plural_of_other_lemma(word, lemmas):
            return name
        return None


def read_word_list(path: str | Path) -> set[str]:
    """Words of a one-word-per-line file (`#` comments), as canonical forms."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    words = (canonical(line.split("#", 1)[0].strip()) for line in lines)
    return {word for word in words if word}
