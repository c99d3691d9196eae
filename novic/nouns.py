"""The noun stage: WordNet object synsets into the noun dictionary, and its vocabularies.

The pipeline (reference section 1, in this project's own terms), one module per step:

1. `novic.synsets.select_synsets`: the noun synsets that the rules file includes, among the
   candidates of the object lexnames.
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

from novic.classlists import class_list_floors, read_class_list
from novic.dictionary import NOUN_SCHEMA
from novic.forms import Pluralizer, add_plurals, canonical, surface_forms
from novic.frequency import (
    WordFrequency,
    form_shares,
    multiplicity,
    read_homographs,
    sense_share,
    split_multiplicity,
    web1t_bigrams,
)
from novic.synsets import parse_rules, resolve_rules, select_wordnet_synsets

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
    shares: dict[str, float] = field(default_factory=dict)  # homograph share of listed forms

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


def finish_nouns(nouns: Iterable[NounDraft], frequency: WordFrequency) -> pa.Table:
    """Assign multiplicities and ids (in canonical-form order) and build the noun table."""
    rows: dict[str, list] = {name: [] for name in NOUN_SCHEMA.names}
    for noun_id, noun in enumerate(sorted(nouns, key=lambda n: n.target), 1):
        total = max(round(multiplicity(noun.frequency)), 1)
        variants = noun.singulars + noun.plurals
        weights = [multiplicity(frequency(v) * noun.shares.get(v, 1.0)) for v in variants]
        counts = split_multiplicity(total, weights)
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
    homographs: Mapping[str, float] = {},
) -> pa.Table:
    """Plurals, frequencies and the class-list boost for curated nouns; returns the noun table.

    `homographs` maps canonical forms to the share of their frequency that is the noun
    (`novic.frequency.read_homographs`).
    """
    add_plurals(nouns.values(), pluralize)

    def estimate(noun: NounDraft) -> float:
        noun.shares = form_shares(noun.singulars, noun.plurals, homographs, pluralize)
        forms = noun.singulars + noun.plurals
        return frequency.total(forms, lambda form: noun.shares.get(form, 1.0))

    for noun in nouns.values():
        noun.frequency = estimate(noun) * noun.sense_share
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
                    noun.frequency = estimate(noun)
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


def reference_comparison(table: pa.Table) -> dict[str, dict[str, float | int]]:
    """The sizes of the paper's vocabularies FT0/2/6/9 from a dictionary, beside the paper's.

    Per threshold: `nouns`, the paper's `reference_nouns`, `ratio` (nouns / reference), and
    the shape, `step` (nouns / nouns of the threshold before) beside the paper's
    `reference_step`.
    """
    multiplicities = noun_multiplicities(table)
    comparison: dict[str, dict[str, float | int]] = {}
    previous = None
    for threshold, reference in REFERENCE_VOCAB_SIZES.items():
        nouns = sum(m > threshold for m in multiplicities)
        entry: dict[str, float | int] = {
            "nouns": nouns,
            "reference_nouns": reference,
            "ratio": round(nouns / reference, 3),
        }
        if previous is not None:
            entry["step"] = round(nouns / max(previous[0], 1), 3)
            entry["reference_step"] = round(reference / previous[1], 3)
        comparison[f"ft{threshold}"] = entry
        previous = (nouns, reference)
    return comparison


def comparison_line(comparison: Mapping[str, Mapping[str, float | int]]) -> str:
    """One log line: this dictionary's FT sizes and shape beside the paper's."""
    sizes = "/".join(f"{c['nouns']:,}" for c in comparison.values())
    reference = "/".join(f"{c['reference_nouns']:,}" for c in comparison.values())
    ratios = "/".join(f"{c['ratio']:.2f}" for c in comparison.values())
    steps = "/".join(f"{c['step']:.2f}" for c in comparison.values() if "step" in c)
    paper_steps = "/".join(f"{c['reference_step']:.2f}" for c in comparison.values() if "step" in c)
    names = "/".join(name.upper() for name in comparison)
    return (
        f"{names}: {sizes} nouns, paper {reference} (ratio {ratios}); "
        f"steps {steps}, paper {paper_steps}"
    )


# --- The stage ---------------------------------------------------------------------------------


def extract_dictionary(params: Mapping) -> tuple[pa.Table, dict[str, str]]:
    """Run the whole noun stage for the `nouns` config section; returns (table, metadata)."""
    from novic.wordnet import lemma_senses, open_wordnet, sense_counts  # slow imports

    rules_path = params["rules"]
    rules = parse_rules(rules_path)
    homographs = read_homographs(params["homographs"])
    class_lists = {path: read_class_list(path) for path in params["class_lists"]}
    bigrams, bigram_floor = web1t_bigrams() if params["web1t_bigrams"] else (None, 0.0)
    frequency = WordFrequency(
        params["frequency_scale"], params["phrase_penalty"], bigrams, bigram_floor
    )
    with open_wordnet(params["wordnet"]["source"], params["wordnet"]["dict_dir"]) as wn:
        log.info("WordNet %s from %s", wn.version, wn.source)
        synsets = {s.name(): s for s in wn.reader.all_synsets("n")}
        resolved = resolve_rules(rules, lambda name: wn.reader.synset(name).name(), rules_path)
        selected = select_wordnet_synsets(
            wn.reader, resolved, params["lexnames"], params["instances"]
        )
        log.info("%d of %d noun synsets selected", len(selected), len(synsets))
        counts = sense_counts(wn.reader)
        nouns = collect_nouns(
            (n, [(lemma.name(), counts.get(lemma.key(), 0)) for lemma in synsets[n].lemmas()])
            for n in selected
        )
        log.info("%d canonical nouns from their lemmas", len(nouns))
        chosen = set(selected)
        for noun in nouns.values() if params["sense_share"] else ():
            senses = {
                sense for name in noun.lemmas for sense in lemma_senses(wn.reader, counts, name)
            }
            noun.sense_share = sense_share((name in chosen, c) for name, c in senses)
        exceptions = wn.reader._exception_map["n"]  # noun.exc: plural -> [singular]
        pluralize = Pluralizer(exceptions, attested=lambda form: frequency(form) > 0)
        table = build_dictionary(
            nouns, frequency, pluralize, class_lists, params["add_class_nouns"], homographs
        )
        version = wn.version
    metadata = {
        "novic.wordnet_version": version,
        "novic.wordfreq_version": importlib.metadata.version("wordfreq"),
        "novic.lexnames": ",".join(params["lexnames"]),
    }
    return table, metadata
