"""The noun stage: WordNet object synsets into the noun dictionary, and its vocabularies.

The pipeline (reference section 1, in this project's own terms), one module per step:

1. `novic.synsets.select_synsets`: noun synsets whose lexname is an object lexname, refined by
   a rules file.
2. `collect_nouns`: lemma names -> surface forms, grouped by their canonical form.
3. `add_plurals`: WordNet's noun.exc exceptions, then `inflect` for attested regular plurals.
4. `build_dictionary`: word frequencies, class-list boost, multiplicities, the noun table.
5. `threshold_vocab`: the nouns whose summed multiplicity exceeds T.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from novic.classlists import (
    class_list_floors,
    class_nouns,
    coverage,
    floor_base,
    read_class_list,
    variant_index,
)
from novic.dictionary import NOUN_SCHEMA
from novic.forms import Pluralizer, add_plurals, canonical, surface_forms
from novic.frequency import (
    WordFrequency,
    multiplicity,
    read_word_list,
    sense_share,
    split_multiplicity,
)
from novic.synsets import parse_rules, resolve_rules, select_synsets

log = logging.getLogger(__name__)


# Noun counts of the reference's dictionary (WordNet 3.1, Google Web 1T frequencies).
REFERENCE_VOCAB_SIZES = {0: 42_919, 2: 11_897, 6: 5_899, 9: 2_919}


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
    organic: float | None = None  # frequency before the class-list floor (None: a class noun)

    @property
    def variants(self) -> list[str]:
        return self.singulars + self.plurals

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


# --- The dictionary ----------------------------------------------------------------------------


def variant_counts(noun_frequency: float, weights: Sequence[float]) -> list[int]:
    """A noun's multiplicity, split over its variants in proportion to their `weights`."""
    return split_multiplicity(max(round(multiplicity(noun_frequency)), 1), weights)


def finish_nouns(nouns: Iterable[NounDraft], frequency: WordFrequency) -> pa.Table:
    """Assign multiplicities and ids (in canonical-form order) and build the noun table."""
    rows: dict[str, list] = {name: [] for name in NOUN_SCHEMA.names}
    for noun_id, noun in enumerate(sorted(nouns, key=lambda n: n.target), 1):
        weights = [multiplicity(frequency(v)) for v in noun.singulars + noun.plurals]
        counts = variant_counts(noun.frequency, weights)
        organic = 0 if noun.organic is None else sum(variant_counts(noun.organic, weights))
        rows["id"].append(noun_id)
        rows["target_noun"].append(noun.target)
        rows["pretty_noun"].append(noun.pretty)
        rows["singulars"].append(noun.singulars)
        rows["plurals"].append(noun.plurals)
        rows["singulars_freq"].append(counts[: len(noun.singulars)])
        rows["plurals_freq"].append(counts[len(noun.singulars) :])
        rows["frequency"].append(noun.frequency)
        rows["synsets"].append(noun.synsets)
        rows["organic_multiplicity"].append(organic)
    return pa.Table.from_pydict(rows, schema=NOUN_SCHEMA)


def build_dictionary(
    nouns: dict[str, NounDraft],
    frequency: WordFrequency,
    pluralize: Callable[[str], list[str]],
    class_lists: Mapping[str, list[list[str]]] = {},
    add_class_nouns: bool = True,
    general_lists: Mapping[str, list[list[str]]] = {},
) -> pa.Table:
    """Plurals, frequencies and the class-list floor for curated nouns; returns the noun table.

    A class name stands for the noun one of whose variants it is ("skis" for "ski"). The names
    of the object lists (`class_lists`) that no noun has become nouns of their own when
    `add_class_nouns`; the general lists only floor nouns that exist. Floors are computed from
    the frequencies before any floor, and a noun keeps the highest of its floors.
    """
    add_plurals(nouns.values(), pluralize)
    for noun in nouns.values():
        noun.frequency = frequency.total(noun.singulars + noun.plurals) * noun.sense_share
        noun.organic = noun.frequency
    ranked = sorted((n.frequency for n in nouns.values()), reverse=True)
    index = variant_index((n.target, n.variants) for n in nouns.values())
    floors: dict[str, float] = {}
    for lists, add in ((class_lists, add_class_nouns), (general_lists, False)):
        for path, rows in lists.items():
            added = 0
            for row in rows if add else ():
                for name in class_nouns(row):
                    target = canonical(name)
                    if target is None or target in index:
                        continue
                    noun = nouns[target] = NounDraft(target, name, 0, [name])
                    noun.plurals = [p for p in pluralize(name) if p != name]
                    noun.frequency = frequency.total(noun.variants)
                    for key, value in variant_index([(target, noun.variants)]).items():
                        index.setdefault(key, value)
                    added += 1
            list_floors = class_list_floors(rows, ranked, index)
            for target, floor in list_floors.items():
                floors[target] = max(floors.get(target, 0.0), floor)
            named = sum(bool(class_nouns(row)) for row in rows)
            log.info(
                "class list %s: %d classes (%d naming a noun), floor %.3g, %d nouns floored, "
                "%d names added as nouns",
                path,
                len(rows),
                named,
                floor_base(rows, ranked),
                len(list_floors),
                added,
            )
    for target, floor in floors.items():
        nouns[target].frequency = max(nouns[target].frequency, floor)
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


def class_coverage(
    vocab: pa.Table, threshold: int, lists: Mapping[str, Sequence[Sequence[str]]]
) -> dict[str, dict[str, float | int | None]]:
    """Per class list: its classes and the share of them that vocabulary FT{threshold} covers.

    `floored` counts a class when one of its noun names is a variant of a noun of the
    vocabulary (as built, class-list floors included); `organic` only when that noun's
    multiplicity exceeds the threshold without the floor (the dictionary's own quality;
    null when the noun table does not know it, as for the reference's dictionary).
    """
    rows = vocab.select(["target_noun", "singulars", "plurals", "organic_multiplicity"])
    rows = rows.to_pylist()
    floored = variant_index((r["target_noun"], r["singulars"] + r["plurals"]) for r in rows)
    organic = None
    if all(r["organic_multiplicity"] is not None for r in rows):
        organic = variant_index(
            (r["target_noun"], r["singulars"] + r["plurals"])
            for r in rows
            if r["organic_multiplicity"] > threshold
        )
    return {
        name: {
            "classes": len(classes),
            "floored": round(coverage(classes, floored), 4),
            "organic": None if organic is None else round(coverage(classes, organic), 4),
        }
        for name, classes in lists.items()
    }


# --- The stage ---------------------------------------------------------------------------------


def extract_dictionary(params: Mapping) -> tuple[pa.Table, dict[str, str]]:
    """Run the whole noun stage for the `nouns` config section; returns (table, metadata).

    With `source.kind: reference` the noun table is read from the reference's released
    dictionary (`novic.reference.read_reference_nouns`) instead of being built.
    """
    if params["source"]["kind"] == "reference":
        from novic.reference import read_reference_nouns, reference_nouns_metadata

        path = params["source"]["path"]
        return read_reference_nouns(path), reference_nouns_metadata(path)
    from novic.wordnet import lemma_senses, open_wordnet, sense_counts  # slow imports

    rules_path = params["rules"]
    rules = parse_rules(rules_path)
    function_words = read_word_list(params["function_words"])
    class_lists = {path: read_class_list(path) for path in params["class_lists"]}
    general_lists = {path: read_class_list(path) for path in params["general_lists"]}
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
            nouns, frequency, pluralize, class_lists, params["add_class_nouns"], general_lists
        )
        version = wn.version
    metadata = {
        "novic.noun_source": "wordnet",
        "novic.wordnet_version": version,
        "novic.wordfreq_version": importlib.metadata.version("wordfreq"),
        "novic.lexnames": ",".join(params["lexnames"]),
    }
    return table, metadata
