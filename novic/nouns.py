"""The noun stage: WordNet object synsets into the noun dictionary, and its vocabularies.

The pipeline (reference section 1, in this project's own terms), one module per step:

1. `novic.synsets.select_synsets`: the noun synsets that the rules file includes, among the
   candidates of the object lexnames.
2. `collect_nouns`: lemma names -> surface forms, grouped by their canonical form; plural-only
   lemmas ("jeans") name plural-only nouns.
3. `merge_variants`: spacing and British/American spelling variants become one noun.
4. `add_plurals` (in `build_dictionary`): plurals (`novic.forms.Pluralizer`), with every form
   naming one noun.
5. `build_dictionary`: word frequencies (homograph shares), class-list boost, multiplicities,
   the noun table.
6. `threshold_vocab`: the nouns whose summed multiplicity exceeds T.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

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
from novic.forms import Pluralizer, american, canonical, merge_key, read_word_list, surface_forms
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
    """A canonical noun while it is being assembled.

    A plural-only noun ("jeans") has no singulars: its names are its plurals.
    """

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
    organic: float | None = None  # frequency before the class-list floor (None: a class noun)

    @property
    def variants(self) -> list[str]:
        return self.singulars + self.plurals

    def add_singular(self, form: str) -> None:
        if form not in self.singulars:
            self.singulars.append(form)

    def names(self) -> list[str]:
        """The forms that name the noun: its singulars, or its plurals if it is plural-only."""
        return self.singulars or self.plurals

    def absorb(self, other: NounDraft, as_plurals: bool = False) -> None:
        """Take in another noun's forms, synsets and lemmas (`as_plurals`: its names become
        plurals of this noun, as "algae" of "alga", and its own plurals are dropped)."""
        singulars = [] if as_plurals else other.singulars
        plurals = other.names() if as_plurals else other.plurals
        _extend(self.singulars, singulars)
        _extend(self.plurals, plurals)
        _extend(self.synsets, other.synsets)
        _extend(self.lemmas, other.lemmas)


def _extend(forms: list[str], more: Iterable[str]) -> None:
    """Append the forms not there yet (case-insensitively: "Dog" is not added to "dog")."""
    seen = {f.lower() for f in forms}
    for form in more:
        if form.lower() not in seen:
            forms.append(form)
            seen.add(form.lower())


def collect_nouns(
    synset_lemmas: Iterable[tuple[str, Sequence[tuple[str, int]]]],
    plural_form: Callable[[str, str], str | None] | None = None,
) -> dict[str, NounDraft]:
    """Group the lemmas of the selected synsets by canonical form.

    `synset_lemmas` yields (synset name, [(lemma name, usage count), ...]). `plural_form`
    (lemma name, synset name) gives the plural-only name of a lemma ("jean" in jean.n.01 ->
    "jeans"), or None for a singular; a noun with a plural-only lemma is plural-only. Surface
    forms that differ only in case are one form: the lowercase one if there is one (a common
    noun, which has a plural: "Moon", "moon" -> "moon"), else the one used most. The pretty
    form of a noun is the lemma surface form with the highest summed usage count (first seen
    on ties), in the case kept.
    """
    nouns: dict[str, NounDraft] = {}
    counts: dict[tuple[str, str], int] = {}
    plural_only: set[str] = set()
    for synset, lemmas in synset_lemmas:
        for lemma_name, count in lemmas:
            plural = plural_form(lemma_name, synset) if plural_form else None
            forms = surface_forms(plural or lemma_name)
            target = canonical(forms[0])
            if target is None:
                continue
            noun = nouns.get(target)
            if noun is None:
                noun = nouns[target] = NounDraft(target, forms[0], -1)
            if plural:
                plural_only.add(target)
            for form in forms:
                noun.add_singular(form)
                counts[(target, form)] = counts.get((target, form), 0) + count
            if synset not in noun.synsets:
                noun.synsets.append(synset)
            if lemma_name not in noun.lemmas:
                noun.lemmas.append(lemma_name)
            if counts[(target, forms[0])] > noun.pretty_count:
                noun.pretty, noun.pretty_count = forms[0], counts[(target, forms[0])]
    for noun in nouns.values():
        order = {form: i for i, form in enumerate(noun.singulars)}
        best: dict[str, str] = {}
        for form in sorted(
            noun.singulars,
            key=lambda f: (f != f.lower(), -counts[(noun.target, f)], order[f]),
        ):
            best.setdefault(form.lower(), form)
        noun.pretty = best[noun.pretty.lower()]
        noun.singulars = [f for f in noun.singulars if best[f.lower()] == f]
        if noun.target in plural_only:
            noun.singulars, noun.plurals = [], noun.singulars
    return nouns


def merge_variants(
    nouns: Mapping[str, NounDraft], frequency: Callable[[str], float]
) -> dict[str, NounDraft]:
    """Merge nouns whose targets are spelling variants of each other (same `merge_key`):
    spacing and hyphens ("hot dog", "hotdog"), and British/American spelling where the two
    share a synset ("aeroplane", "airplane"; not "philtre" and "filter"). The merged noun
    keeps every form as a variant. Its target is the most frequent target, then the one with
    more words, then the American spelling, then the first alphabetically ("airplane",
    "hot dog", "hairstyle").
    """
    groups: dict[str, list[str]] = {}
    for target in sorted(nouns):
        groups.setdefault(merge_key(target), []).append(target)
    merged: dict[str, NounDraft] = {}
    for group in groups.values():
        parts: list[list[str]] = []  # targets joined by spacing or a shared synset
        for target in group:
            joined = [
                part
                for part in parts
                if any(
                    t.replace(" ", "") == target.replace(" ", "")
                    or set(nouns[t].synsets) & set(nouns[target].synsets)
                    for t in part
                )
            ]
            for part in joined:
                parts.remove(part)
            parts.append([t for part in joined for t in part] + [target])
        for part in parts:
            head = nouns[min(part, key=lambda t: _variant_rank(t, frequency))]
            for target in sorted(part):
                if target != head.target:
                    head.absorb(nouns[target])
                    log.debug("merged %r into %r", target, head.target)
            merged[head.target] = head
    return merged


def _variant_rank(target: str, frequency: Callable[[str], float]) -> tuple:
    return (-frequency(target), -target.count(" "), american(target) != target, target)


def add_plurals(
    nouns: dict[str, NounDraft], pluralize: Pluralizer, frequency: Callable[[str], float]
) -> None:
    """Fill each noun's plurals from its singulars, so that every form names one noun.

    A plural that names another noun (the same canonical form):
    - of the same synset, or plural-looking ("arms" in weaponry.n.01, "oxen" in cattle.n.01):
      that noun merges into this one, its names as plurals ("algae" of "alga");
    - a plural-only noun of `pluralize.plural_only` or a singular with a plural of its own
      (`Pluralizer.keeps_name`: "glasses", "cola"): the plural is not made, and the next most
      frequent one is taken instead ("colons" for "colon");
    - a proper name (every name capitalised: the kingdom "Fungi") that is not the plural's very
      string: both keep their forms.
    A plural made for several nouns goes to the one whose singular is most frequent (times its
    sense share: "crosses" to "cross", not "crosse"), or merges them if they share a synset
    ("lense" into "lens").
    A plural equal to the singular ("deer") is a plural variant too.
    """
    owner: dict[str, str] = {}
    for target in sorted(nouns):
        for form in nouns[target].variants:
            key = canonical(form)
            if key is not None:
                owner.setdefault(key, target)

    @cache
    def keeps(target: str) -> bool:
        return any(pluralize.keeps_name(form) for form in nouns[target].names())

    names = {target: set(noun.names()) for target, noun in nouns.items()}
    proper = {target: all(f[:1].isupper() for f in names[target]) for target in nouns}

    def shares_synset(a: str, b: str) -> bool:
        return bool(set(nouns[a].synsets) & set(nouns[b].synsets))

    class Taken:  # the names a noun's plurals must not take
        def __init__(self, target: str) -> None:
            self.target = target

        def __contains__(self, key: object) -> bool:
            other = owner.get(key) if isinstance(key, str) else None
            return (
                other is not None
                and other != self.target
                and keeps(other)
                and not proper[other]
                and not shares_synset(other, self.target)
            )

    made: dict[str, list[tuple[str, str, float]]] = {}  # canonical -> (target, plural, rank)
    for target in sorted(nouns):
        noun = nouns[target]
        taken = Taken(target)
        for singular in noun.singulars:
            for plural in pluralize(singular, taken):
                key = canonical(plural)
                if key is not None:
                    rank = frequency(singular) * noun.sense_share
                    made.setdefault(key, []).append((target, plural, rank))
    parent: dict[str, str] = {}
    as_plurals: set[str] = set()

    def root(target: str) -> str:
        while target in parent:
            target = parent[target]
        return target

    plurals: dict[str, list[str]] = {}
    for key in sorted(made):
        claims = made[key]
        own = owner.get(key)
        if own is None:  # made for several nouns: the most frequent singular's
            winner = max(claims, key=lambda c: c[2])[0]
        for target, plural, _ in claims:
            if own is not None and own != target and proper[own] and plural not in names[own]:
                pass  # "fungi" of "fungus" and the kingdom "Fungi" both stay
            elif own is not None and own != target:
                if root(own) != root(target):
                    parent[root(own)] = root(target)
                    as_plurals.add(own)
            elif own is None and target != winner:
                if not shares_synset(target, winner):
                    continue
                if root(target) != root(winner):
                    parent[root(target)] = root(winner)
            plurals.setdefault(target, []).append(plural)
    for target in sorted(nouns):
        _extend(nouns[target].plurals, plurals.get(target, []))
    for target in sorted(parent):
        head = nouns[root(target)]
        head.absorb(nouns[target], as_plurals=target in as_plurals)
        log.debug("merged %r into %r", target, head.target)
    for target in parent:
        del nouns[target]


# --- The dictionary ----------------------------------------------------------------------------


def variant_counts(noun_frequency: float, weights: Sequence[float]) -> list[int]:
    """A noun's multiplicity, split over its variants in proportion to their `weights`."""
    return split_multiplicity(max(round(multiplicity(noun_frequency)), 1), weights)


def finish_nouns(nouns: Iterable[NounDraft], frequency: WordFrequency) -> pa.Table:
    """Assign multiplicities and ids (in canonical-form order) and build the noun table."""
    rows: dict[str, list] = {name: [] for name in NOUN_SCHEMA.names}
    for noun_id, noun in enumerate(sorted(nouns, key=lambda n: n.target), 1):
        weights = [multiplicity(frequency(v) * noun.shares.get(v, 1.0)) for v in noun.variants]
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


class NounIndex:
    """Finds the noun a name belongs to: by the canonical form of any of the noun's forms, or
    by its target's spelling-variant key ("Hotdog" -> "hot dog", "aeroplanes" -> "airplane")."""

    def __init__(self, nouns: Iterable[NounDraft]) -> None:
        self.forms: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        for noun in nouns:
            self.add(noun)

    def add(self, noun: NounDraft) -> None:
        for form in noun.variants:
            key = canonical(form)
            if key is not None:
                self.forms.setdefault(key, noun.target)
        self.keys.setdefault(merge_key(noun.target), noun.target)

    def find(self, name: str) -> str | None:
        key = canonical(name)
        return None if key is None else self.get(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The noun of a canonical form (as a mapping, for `novic.classlists`)."""
        return self.forms.get(key) or self.keys.get(merge_key(key)) or default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


def add_class_name(noun: NounDraft, name: str, pluralize: Pluralizer, index: NounIndex) -> None:
    """Give a noun a class name as a form (a plural if it is plural-only, else a singular with
    the plurals no other noun has), and index it."""
    if pluralize.is_plural_only(name):
        noun.plurals.append(name)
    else:
        noun.singulars.append(name)
        noun.plurals += [p for p in pluralize(name) if index.find(p) in (None, noun.target)]
    index.add(noun)


def attach_class_spellings(
    nouns: dict[str, NounDraft],
    index: NounIndex,
    rows: Sequence[Sequence[str]],
    pluralize: Pluralizer,
) -> None:
    """Make a class name that names a noun only through its spelling key one of its variants.

    COCO's "wine glass" and "cell phone" are WordNet's "wineglass" and "cellphone": the class's
    own spelling becomes a form of that noun, so prompts and vocabularies carry it too.
    """
    for row in rows:
        for name in class_nouns(row):
            key, target = canonical(name), index.find(name)
            if target is None or key is None or key in index.forms:
                continue
            add_class_name(nouns[target], name, pluralize, index)


def drop_forms(nouns: dict[str, NounDraft], dropped: Container[str]) -> None:
    """Remove the nouns named by a dropped form, and dropped forms from the other nouns.

    A dropped form is a synonym too rare in its object sense to name one ("soul" for a person,
    "emergency" for a hand brake): a noun is dropped with its name, or loses the form.
    """
    for target in [t for t in nouns if t in dropped]:
        del nouns[target]
    for noun in nouns.values():
        noun.singulars = [f for f in noun.singulars if canonical(f) not in dropped]
        noun.plurals = [f for f in noun.plurals if canonical(f) not in dropped]


def build_dictionary(
    nouns: dict[str, NounDraft],
    frequency: WordFrequency,
    pluralize: Pluralizer,
    class_lists: Mapping[str, list[list[str]]] = {},
    add_class_nouns: bool = True,
    homographs: Mapping[str, float | None] = {},
    general_lists: Mapping[str, list[list[str]]] = {},
) -> pa.Table:
    """Plurals, frequencies and the class-list floor for curated nouns; returns the noun table.

    `homographs` maps canonical forms to the share of their frequency that is the noun, or None
    for forms that name no noun (`novic.frequency.read_homographs`). A class name stands for
    the noun that has it as any form or spelling variant ("skis", "hotdog", "aeroplane"). The
    names of the object lists (`class_lists`) that no noun has become nouns of their own when
    `add_class_nouns`; the general lists only floor nouns that exist. Floors are computed from
    the frequencies before any floor, and a noun keeps the highest of its floors.
    """
    dropped = {form for form, share in homographs.items() if share is None}
    drop_forms(nouns, dropped)
    add_plurals(nouns, pluralize, frequency)
    drop_forms(nouns, dropped)

    def estimate(noun: NounDraft) -> float:
        noun.shares = form_shares(noun.singulars, noun.plurals, homographs, pluralize)
        return frequency.total(noun.variants, lambda form: noun.shares.get(form, 1.0))

    index = NounIndex(nouns.values())
    for rows in class_lists.values() if add_class_nouns else ():
        attach_class_spellings(nouns, index, rows, pluralize)
    for noun in nouns.values():
        noun.frequency = noun.organic = estimate(noun) * noun.sense_share
    ranked = sorted((n.frequency for n in nouns.values()), reverse=True)
    floors: dict[str, float] = {}
    for lists, add in ((class_lists, add_class_nouns), (general_lists, False)):
        for path, rows in lists.items():
            added = 0
            for row in rows if add else ():
                for name in class_nouns(row):
                    target = canonical(name)
                    if target is None or index.find(name) is not None:
                        continue
                    noun = nouns[target] = NounDraft(target, name, 0)
                    add_class_name(noun, name, pluralize, index)
                    noun.frequency = estimate(noun)
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
    homographs = read_homographs(params["homographs"])
    class_lists = {path: read_class_list(path) for path in params["class_lists"]}
    bigrams, bigram_floor = web1t_bigrams() if params["web1t_bigrams"] else (None, 0.0)
    frequency = WordFrequency(
        params["frequency_scale"], params["phrase_penalty"], bigrams, bigram_floor
    )
    general_lists = {path: read_class_list(path) for path in params["general_lists"]}
    with open_wordnet(params["wordnet"]["source"], params["wordnet"]["dict_dir"]) as wn:
        log.info("WordNet %s from %s", wn.version, wn.source)
        synsets = {s.name(): s for s in wn.reader.all_synsets("n")}
        resolved = resolve_rules(rules, lambda name: wn.reader.synset(name).name(), rules_path)
        selected = select_wordnet_synsets(
            wn.reader, resolved, params["lexnames"], params["instances"]
        )
        log.info("%d of %d noun synsets selected", len(selected), len(synsets))
        counts = sense_counts(wn.reader)
        exceptions = wn.reader._exception_map["n"]  # noun.exc: plural -> [singular]
        pluralize = Pluralizer(
            exceptions,
            frequency,
            plural_only=read_word_list(params["plural_only"]),
            reader=wn.reader,
        )
        nouns = collect_nouns(
            (
                (n, [(lemma.name(), counts.get(lemma.key(), 0)) for lemma in synsets[n].lemmas()])
                for n in selected
            ),
            lambda lemma, n: pluralize.plural_only_form(
                lemma, synsets[n].lemma_names(), synsets[n].definition()
            ),
        )
        nouns = merge_variants(nouns, frequency)
        log.info("%d canonical nouns from their lemmas", len(nouns))
        chosen = set(selected)
        for noun in nouns.values() if params["sense_share"] else ():
            senses = {
                sense for name in noun.lemmas for sense in lemma_senses(wn.reader, counts, name)
            }
            noun.sense_share = sense_share((name in chosen, c) for name, c in senses)
        table = build_dictionary(
            nouns,
            frequency,
            pluralize,
            class_lists,
            params["add_class_nouns"],
            homographs,
            general_lists,
        )
        version = wn.version
    metadata = {
        "novic.noun_source": "wordnet",
        "novic.wordnet_version": version,
        "novic.wordfreq_version": importlib.metadata.version("wordfreq"),
        "novic.lexnames": ",".join(params["lexnames"]),
    }
    return table, metadata
