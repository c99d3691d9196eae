"""Object nouns: WordNet synset selection, curation into canonical nouns, frequencies, thresholds.

The pipeline of this module (reference section 1, in this project's own terms):

1. `select_synsets`: noun synsets whose lexname is an object lexname, refined by a rules file.
2. `collect_nouns`: lemma names -> surface forms, grouped by their canonical form.
3. `add_plurals`: WordNet's noun.exc exceptions, then `inflect` for attested regular plurals.
4. `build_dictionary`: word frequencies, class-list boost, multiplicities, the noun table.
5. `threshold_vocab`: the nouns whose summed multiplicity exceeds T.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pyarrow as pa
import wordfreq

from novic.dictionary import NOUN_SCHEMA

log = logging.getLogger(__name__)

MIN_FREQ = 2.5e-6  # frequencies (relative to "the") below this count as this
MULT_SCALE = 1.5  # multiplicity = 1 + MULT_SCALE * ln(f / MIN_FREQ)
RULE_TAGS = frozenset("EIYN")
ROOT_SYNSET = "entity.n.01"

# Noun counts of the reference's dictionary (WordNet 3.1, Google Web 1T frequencies).
REFERENCE_VOCAB_SIZES = {0: 42_919, 2: 11_897, 6: 5_899, 9: 2_919}


# --- Canonical and surface forms -------------------------------------------------------------


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


# --- Synset selection --------------------------------------------------------------------------


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


# --- Curation ----------------------------------------------------------------------------------


@dataclass
class NounDraft:
    """A canonical noun while it is being assembled."""

    target: str
    pretty: str
    pretty_count: int
    singulars: list[str] = field(default_factory=list)
    plurals: list[str] = field(default_factory=list)
    synsets: list[str] = field(default_factory=list)
    lemmas: list[str] = field(default_factory=list)  # WordNet lemma names behind the noun
    frequency: float = 0.0
    sense_share: float = 1.0  # share of the forms' usage that means this noun

    def add_singular(self, form: str) -> None:
        if form not in self.singulars:
            self.singulars.append(form)


def collect_nouns(
    synset_lemmas: Iterable[tuple[str, Sequence[tuple[str, int]]]],
) -> dict[str, NounDraft]:
    """Group the lemmas of the selected synsets by canonical form.

    `synset_lemmas` yields (synset name, [(lemma name, usage count), ...]). The pretty form of a
    noun is the lemma surface form with the highest summed usage count (first seen on ties).
    """
    nouns: dict[str, NounDraft] = {}
    counts: dict[tuple[str, str], int] = {}
    for synset, lemmas in synset_lemmas:
        for lemma_name, count in lemmas:
            forms = surface_forms(lemma_name)
            target = canonical(forms[0])
            if target is None:
                continue
            noun = nouns.get(target)
            if noun is None:
                noun = nouns[target] = NounDraft(target, forms[0], -1)
            for form in forms:
                noun.add_singular(form)
            if synset not in noun.synsets:
                noun.synsets.append(synset)
            if lemma_name not in noun.lemmas:
                noun.lemmas.append(lemma_name)
            key = (target, forms[0])
            counts[key] = counts.get(key, 0) + count
            if counts[key] > noun.pretty_count:
                noun.pretty, noun.pretty_count = forms[0], counts[key]
    return nouns


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


def add_plurals(nouns: Iterable[NounDraft], pluralize: Callable[[str], list[str]]) -> None:
    """Fill each noun's plural variants from its singular ones."""
    for noun in nouns:
        for singular in noun.singulars:
            for plural in pluralize(singular):
                if plural not in noun.plurals and plural not in noun.singulars:
                    noun.plurals.append(plural)


# --- Frequencies and multiplicities ------------------------------------------------------------


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


# --- Class lists -------------------------------------------------------------------------------


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


# --- The dictionary ----------------------------------------------------------------------------


def finish_nouns(nouns: Iterable[NounDraft], frequency: WordFrequency) -> pa.Table:
    """Assign multiplicities and ids (in canonical-form order) and build the noun table."""
    rows: dict[str, list] = {name: [] for name in NOUN_SCHEMA.names}
    for noun_id, noun in enumerate(sorted(nouns, key=lambda n: n.target), 1):
        total = max(round(multiplicity(noun.frequency)), 1)
        variants = noun.singulars + noun.plurals
        counts = split_multiplicity(total, [multiplicity(frequency(v)) for v in variants])
        rows["id"].append(noun_id)
        rows["target_noun"].append(noun.target)
        rows["pretty_noun"].append(noun.pretty)
        rows["singulars"].append(noun.singulars)
        rows["plurals"].append(noun.plurals)
        rows["singulars_freq"].append(counts[: len(noun.singulars)])
        rows["plurals_freq"].append(counts[len(noun.singulars) :])
        rows["frequency"].append(noun.frequency)
        rows["synsets"].append(noun.synsets)
    return pa.Table.from_pydict(rows, schema=NOUN_SCHEMA)


def build_dictionary(
    nouns: dict[str, NounDraft],
    frequency: WordFrequency,
    pluralize: Callable[[str], list[str]],
    class_lists: Mapping[str, list[list[str]]] = {},
    add_class_nouns: bool = True,
) -> pa.Table:
    """Plurals, frequencies and the class-list boost for curated nouns; returns the noun table."""
    add_plurals(nouns.values(), pluralize)
    for noun in nouns.values():
        noun.frequency = frequency.total(noun.singulars + noun.plurals) * noun.sense_share
    ranked = sorted((n.frequency for n in nouns.values()), reverse=True)
    for path, rows in class_lists.items():
        floors = class_list_floors(rows, ranked)
        added = 0
        for row in rows:
            for name in row:
                target = canonical(name)
                if target is None or target in nouns:
                    continue
                if add_class_nouns:
                    noun = nouns[target] = NounDraft(target, name, 0, [name])
                    noun.plurals = [p for p in pluralize(name) if p != name]
                    noun.frequency = frequency.total(noun.singulars + noun.plurals)
                    added += 1
        for target, floor in floors.items():
            if target in nouns:
                nouns[target].frequency = max(nouns[target].frequency, floor)
        missing = [t for t in floors if t not in nouns]
        log.info(
            "class list %s: %d classes, floor %.3g, %d names added as nouns%s",
            path,
            len(rows),
            ranked[min(len(rows), len(ranked)) - 1] if ranked else 0.0,
            added,
            f", {len(missing)} not in the dictionary: {', '.join(missing[:10])}" if missing else "",
        )
    return finish_nouns(nouns.values(), frequency)


def noun_multiplicities(table: pa.Table) -> list[int]:
    """Summed variant multiplicity of every noun (what thresholds compare against)."""
    singular = table.column("singulars_freq").to_pylist()
    plural = table.column("plurals_freq").to_pylist()
    return [sum(s) + sum(p) for s, p in zip(singular, plural, strict=True)]


def threshold_vocab(table: pa.Table, threshold: int) -> pa.Table:
    """Vocabulary FT{threshold}: the nouns whose summed multiplicity exceeds `threshold`."""
    keep = [m > threshold for m in noun_multiplicities(table)]
    return table.filter(pa.array(keep))


def vocab_stats(table: pa.Table) -> dict[str, float | int]:
    """Counts of a noun table: nouns, variants, and multiplicity-weighted variants."""
    singular = table.column("singulars_freq").to_pylist()
    plural = table.column("plurals_freq").to_pylist()
    nouns = max(table.num_rows, 1)
    weighted_singular = sum(map(sum, singular))
    weighted_plural = sum(map(sum, plural))
    return {
        "nouns": table.num_rows,
        "singular_variants": sum(map(len, singular)),
        "plural_variants": sum(map(len, plural)),
        "singular_weighted": weighted_singular,
        "plural_weighted": weighted_plural,
        "mean_noun_multiplicity": round((weighted_singular + weighted_plural) / nouns, 3),
    }


# --- The stage ---------------------------------------------------------------------------------


def resolve_rules(rules: Mapping[str, Rule], lookup: Callable[[str], str], path: str) -> dict:
    """Map each rule to its synset's canonical name; unknown synsets are errors naming the line."""
    resolved: dict[str, Rule] = {}
    for name, rule in rules.items():
        try:
            resolved[lookup(name)] = rule
        except Exception as error:  # nltk raises WordNetError or ValueError
            raise RulesError(f"{path}:{rule.line}: unknown synset {name} ({error})") from None
    return resolved


def extract_dictionary(params: Mapping) -> tuple[pa.Table, dict[str, str]]:
    """Run the whole noun stage for the `nouns` config section; returns (table, metadata)."""
    from novic.wordnet import lemma_senses, open_wordnet, sense_counts  # slow imports

    rules_path = params["rules"]
    rules = parse_rules(rules_path)
    function_words = read_word_list(params["function_words"])
    class_lists = {path: read_class_list(path) for path in params["class_lists"]}
    frequency = WordFrequency(params["phrase_penalty"])
    with open_wordnet(params["wordnet"]["source"], params["wordnet"]["dict_dir"]) as wn:
        log.info("WordNet %s from %s", wn.version, wn.source)
        synsets = {s.name(): s for s in wn.reader.all_synsets("n")}
        resolved = resolve_rules(rules, lambda name: wn.reader.synset(name).name(), rules_path)
        selected = select_synsets(
            synsets,
            lambda n: [p.name() for p in synsets[n].hypernyms() + synsets[n].instance_hypernyms()],
            lambda n: synsets[n].lexname(),
            params["lexnames"],
            resolved,
            lambda n: bool(synsets[n].instance_hypernyms()),
            params["skip_instances"],
        )
        log.info("%d of %d noun synsets selected", len(selected), len(synsets))
        counts = sense_counts(wn.reader)
        nouns = collect_nouns(
            (n, [(lemma.name(), counts.get(lemma.key(), 0)) for lemma in synsets[n].lemmas()])
            for n in selected
        )
        log.info("%d canonical nouns from their lemmas", len(nouns))
        chosen = set(selected)
        for noun in nouns.values():
            if noun.target in function_words:
                noun.sense_share = 0.0
            elif params["sense_share"]:
                senses = {
                    sense for name in noun.lemmas for sense in lemma_senses(wn.reader, counts, name)
                }
                noun.sense_share = sense_share((name in chosen, c) for name, c in senses)
        exceptions = wn.reader._exception_map["n"]  # noun.exc: plural -> [singular]
        pluralize = Pluralizer(exceptions, attested=lambda form: frequency(form) > 0)
        table = build_dictionary(
            nouns, frequency, pluralize, class_lists, params["add_class_nouns"]
        )
        version = wn.version
    metadata = {
        "novic.wordnet_version": version,
        "novic.wordfreq_version": importlib.metadata.version("wordfreq"),
        "novic.lexnames": ",".join(params["lexnames"]),
    }
    return table, metadata
