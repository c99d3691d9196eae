"""Noun forms: plurals, plural-only nouns, and the merging of spelling and plural variants.

The audit cases of the noun dictionary (issue 14): "doe" must not take the frequency of the verb
"does", nor "specie" that of "species"; "camerae", "busses", "pease" and colon's "cola" are not
plurals; jeans and scissors are plural-only; deer and sheep have themselves as plural; case,
spacing and British/American variants are one noun.
"""

from pathlib import Path

import pytest

from novic.forms import Pluralizer, american, merge_key
from novic.frequency import WordFrequency
from novic.nouns import NounDraft, add_plurals, build_dictionary, collect_nouns, merge_variants

DEBIAN_DICT = Path("/usr/share/wordnet")
needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_DICT / "data.noun").exists(),
    reason="Debian's wordnet-base is not installed (make test installs it)",
)

# Toy frequencies (per million words): only these forms are attested.
FREQ = {
    "camera": 9.0, "cameras": 22.0, "bus": 20.0, "buses": 10.0, "busses": 0.6, "pea": 2.0,
    "peas": 4.5, "pease": 0.6, "doe": 5.0, "does": 1300.0, "colon": 3.0, "cola": 5.5,
    "colons": 0.14, "cactus": 2.5, "cacti": 0.56, "cactuses": 0.07, "deer": 30.0, "sheep": 40.0,
    "dog": 100.0, "dogs": 60.0, "police dogs": 0.5, "mice": 12.0, "glasses": 30.0,
}  # fmt: skip
EXCEPTIONS = {"camerae": ["camera"], "busses": ["bus"], "pease": ["pea"], "cola": ["colon"]}


def _pluralizer(other_reading=None, plural_only=()):
    return Pluralizer(
        EXCEPTIONS,
        lambda form: FREQ.get(form, 0.0) / 1e6,
        other_reading=other_reading,
        plural_only=plural_only,
    )


def test_pluralizer_prefers_the_modern_attested_plural():
    plural = _pluralizer()
    assert plural("camera") == ["cameras"]  # not WordNet's "camerae" (unattested)
    assert plural("bus") == ["buses"]  # "busses" is under a quarter of "buses"
    assert plural("pea") == ["peas"]  # not "pease"
    assert plural("cactus") == ["cacti"]  # lemminflect's classical plural is the common one
    assert plural("dog") == ["dogs"]
    assert plural("police dog") == ["police dogs"]  # the head word is pluralised
    assert plural("cat") == []  # "cats" is not attested in this toy table
    assert plural("Canis") == [] and plural("Boston") == []  # proper and Latin names


def test_pluralizer_keeps_invariant_plurals():
    plural = _pluralizer()
    assert plural("deer") == ["deer"]
    assert plural("sheep") == ["sheep"]


def test_a_plural_with_another_reading_does_not_steal_its_frequency():
    readings = {("does", "doe"), ("cola", "colon")}
    plural = _pluralizer(other_reading=lambda p, s: (p, s) in readings)
    assert plural("doe") == []  # "does" is 260 times as frequent as "doe": the verb's
    assert plural("colon") == ["cola"]  # only twice as frequent: left to the noun table
    assert plural("colon", taken={"cola"}) == ["colons"]  # the next one if "cola" is a noun


def test_plural_only_words_get_no_plural():
    plural = _pluralizer(plural_only={"jeans", "glasses"})
    assert plural("jeans") == [] and plural("blue jeans") == []
    assert plural.is_plural_only("blue jeans") and not plural.is_plural_only("blue jean")
    assert plural.keeps_name("glasses") and not plural.keeps_name("arms")


# --- merging -----------------------------------------------------------------------------------


def test_collect_nouns_merges_case_variants_and_makes_plural_only_nouns():
    nouns = collect_nouns(
        [
            ("dog.n.01", [("dog", 42), ("Dog", 50)]),
            ("moon.n.01", [("Moon", 7), ("moon", 1)]),
            ("scissors.n.01", [("scissors", 3), ("pair_of_scissors", 0)]),
            ("jean.n.01", [("jean", 2)]),
            ("denim.n.02", [("jean", 0)]),
        ],
        lambda lemma, synset: (
            {"jean.n.01": "jeans", "scissors.n.01": "scissors"}.get(synset)
            if lemma in ("jean", "scissors")
            else None
        ),
    )
    assert nouns["dog"].singulars == ["dog"] and nouns["dog"].pretty == "dog"
    assert nouns["moon"].singulars == ["moon"]  # lowercase wins: the common noun
    assert nouns["scissors"].singulars == [] and nouns["scissors"].plurals == ["scissors"]
    assert nouns["pair of scissors"].singulars == ["pair of scissors"]
    assert nouns["jeans"].plurals == ["jeans"] and nouns["jeans"].synsets == ["jean.n.01"]
    assert nouns["jean"].singulars == ["jean"] and nouns["jean"].synsets == ["denim.n.02"]


def _noun(target, singulars, synsets=(), plurals=()):
    return NounDraft(target, singulars[0] if singulars else plurals[0], 0, list(singulars),
                     list(plurals), list(synsets))  # fmt: skip


def test_merge_variants_joins_spacing_and_spelling_variants():
    freq = {"hot dog": 3.0, "hotdog": 2.0, "airplane": 5.0, "aeroplane": 1.0}
    nouns = {
        "hot dog": _noun("hot dog", ["hot dog", "hot-dog"], ["frank.n.02"]),
        "hotdog": _noun("hotdog", ["hotdog"], ["hotdog.n.02"]),
        "airplane": _noun("airplane", ["airplane"], ["airplane.n.01"]),
        "aeroplane": _noun("aeroplane", ["aeroplane"], ["airplane.n.01"]),
        "philtre": _noun("philtre", ["philtre"], ["philter.n.01"]),
        "filter": _noun("filter", ["filter"], ["filter.n.01"]),
    }
    merged = merge_variants(nouns, lambda form: freq.get(form, 0.0))
    assert set(merged) == {"hot dog", "airplane", "philtre", "filter"}
    assert merged["hot dog"].singulars == ["hot dog", "hot-dog", "hotdog"]
    assert merged["hot dog"].synsets == ["frank.n.02", "hotdog.n.02"]
    assert merged["airplane"].singulars == ["airplane", "aeroplane"]
    # British/American spellings merge only with a shared synset: a philtre is no filter
    assert merge_key("philtre") == merge_key("filter") == "filter"
    assert american("colour television") == "color television"
    assert merge_key("Hot Dog".lower()) == merge_key("hotdog")


def test_merge_target_is_the_most_frequent_then_the_spaced_form():
    nouns = {t: _noun(t, [t], ["x.n.01"]) for t in ("ice cream", "icecream")}
    assert set(merge_variants(nouns, lambda form: 1.0)) == {"ice cream"}  # a tie: more words
    nouns = {t: _noun(t, [t], ["x.n.01"]) for t in ("hair style", "hairstyle")}
    freq = {"hairstyle": 4e-5, "hair style": 1e-5}
    assert set(merge_variants(nouns, lambda f: freq[f])) == {"hairstyle"}


def _add_plurals(nouns, other_reading=None, plural_only=()):
    plural = _pluralizer(other_reading, plural_only)
    add_plurals(nouns, plural, lambda form: FREQ.get(form, 0.0))
    return nouns


def test_add_plurals_gives_a_name_to_one_noun():
    nouns = _add_plurals(
        {
            "colon": _noun("colon", ["colon"], ["colon.n.01"]),
            "cola": _noun("cola", ["cola"], ["cola.n.02"]),
            "glass": _noun("glass", ["glass"], ["glass.n.02"]),
            "glasses": _noun("glasses", [], ["spectacles.n.01"], ["glasses"]),
            "mouse": _noun("mouse", ["mouse"], ["mouse.n.01"]),
            "mice": _noun("mice", ["mice"], ["mouse.n.01"]),
            "deer": _noun("deer", ["deer"], ["deer.n.01"]),
        },
        plural_only={"glasses"},
    )
    assert nouns["colon"].plurals == ["colons"]  # "cola" is a noun of its own
    assert nouns["cola"].singulars == ["cola"]
    assert nouns["glass"].plurals == []  # "glasses" are spectacles
    assert nouns["glasses"].plurals == ["glasses"] and nouns["glasses"].singulars == []
    assert "mice" not in nouns  # same synset: "mice" is mouse's plural
    assert nouns["mouse"].plurals == ["mice"]
    assert nouns["deer"].singulars == nouns["deer"].plurals == ["deer"]


def test_a_plural_looking_noun_becomes_the_plural_of_its_singular():
    freq = {"arm": 1.0, "arms": 1.0, "crosse": 0.01, "cross": 1.0, "crosses": 0.5}
    nouns = {
        "arm": _noun("arm", ["arm"], ["arm.n.01"]),
        "arms": _noun("arms", [], ["weaponry.n.01"], ["arms"]),
        "cross": _noun("cross", ["cross"], ["cross.n.01"]),
        "crosse": _noun("crosse", ["crosse"], ["crosse.n.01"]),
    }
    plural = Pluralizer({}, lambda form: freq.get(form, 0.0))
    add_plurals(nouns, plural, lambda form: freq.get(form, 0.0))
    assert "arms" not in nouns
    assert nouns["arm"].plurals == ["arms"]
    assert nouns["arm"].synsets == ["arm.n.01", "weaponry.n.01"]
    # a plural made for two nouns goes to the more frequent singular
    assert nouns["cross"].plurals == ["crosses"] and nouns["crosse"].plurals == []


def test_class_names_find_merged_and_plural_only_nouns():
    freq = WordFrequency()
    nouns = merge_variants(
        {
            "hot dog": _noun("hot dog", ["hot dog"], ["frank.n.02"]),
            "jeans": _noun("jeans", [], ["jean.n.01"], ["jeans"]),
            "airplane": _noun("airplane", ["airplane", "aeroplane"], ["airplane.n.01"]),
        },
        freq,
    )
    plural = Pluralizer({}, freq, plural_only={"jeans", "scissors"})
    classes = {"list.txt": [["hotdog"], ["jeans"], ["aeroplanes"], ["scissors"]]}
    table = build_dictionary(nouns, freq, plural, classes)
    rows = {r["target_noun"]: r for r in table.to_pylist()}
    assert set(rows) == {"hot dog", "jeans", "airplane", "scissors"}  # only scissors added
    assert rows["scissors"]["singulars"] == [] and rows["scissors"]["plurals"] == ["scissors"]
    assert rows["jeans"]["singulars_freq"] == [] and len(rows["jeans"]["plurals_freq"]) == 1


# --- with WordNet ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wordnet_pluralizer():
    from novic.forms import read_word_list
    from novic.wordnet import open_wordnet

    with open_wordnet("dict", DEBIAN_DICT) as wn:
        yield (
            Pluralizer(
                wn.reader._exception_map["n"],
                WordFrequency(),
                plural_only=read_word_list(
                    Path(__file__).parents[1] / "resources/plural_only_nouns.txt"
                ),
                reader=wn.reader,
            ),
            wn.reader,
        )


@needs_debian_wordnet
@pytest.mark.parametrize(
    ("singular", "plurals"),
    [
        ("camera", ["cameras"]),
        ("bus", ["buses"]),
        ("pea", ["peas"]),
        ("doe", []),  # "does": the verb "do"
        ("specie", []),  # "species": a noun of its own
        ("deer", ["deer"]),
        ("sheep", ["sheep"]),
        ("mouse", ["mice"]),
        ("person", ["people"]),  # "people" is a noun too, but only 5 times as frequent
        ("mother-in-law", ["mothers-in-law"]),
        ("jeans", []),
    ],
)
def test_wordnet_plurals(wordnet_pluralizer, singular, plurals):
    plural, _ = wordnet_pluralizer
    assert plural(singular) == plurals


@needs_debian_wordnet
@pytest.mark.parametrize(
    ("lemma", "synset", "expected"),
    [
        ("scissors", "scissors.n.01", "scissors"),  # listed, and "pair_of_scissors"
        ("jean", "jean.n.01", "jeans"),  # "(usually plural)" and listed
        ("blue_jean", "jean.n.01", "blue jeans"),
        ("jean", "denim.n.02", None),  # the fabric
        ("tweezer", "pincer.n.01", "tweezers"),  # "pair_of_tweezers"
        ("glasses", "spectacles.n.01", "glasses"),
        ("arms", "weaponry.n.01", "arms"),  # the plural of "arm", which the synset lacks
        ("braces", "brace.n.07", None),  # the synset has "brace": a plural of the noun
        ("coat_of_arms", "coat_of_arms.n.01", None),  # the head is "coat"
        ("Zea_mays", "corn.n.01", None),  # a binomial
        ("species", "species.n.01", None),  # lemminflect: a singular
        ("dog", "dog.n.01", None),
    ],
)
def test_plural_only_lemmas_from_wordnet(wordnet_pluralizer, lemma, synset, expected):
    plural, reader = wordnet_pluralizer
    s = reader.synset(synset)
    assert plural.plural_only_form(lemma, s.lemma_names(), s.definition()) == expected


def test_a_proper_name_keeps_its_form_beside_a_plural():
    freq = {"fungus": 1.0, "fungi": 1.0, "person": 1.0, "people": 5.0, "English people": 1.0}
    nouns = {
        "fungus": _noun("fungus", ["fungus"], ["fungus.n.01"]),
        "fungi": _noun("fungi", ["Fungi"], ["fungi.n.01"]),
        "english person": _noun("english person", ["English person"], ["englishman.n.01"]),
        "english people": _noun("english people", ["English people"], ["english.n.02"]),
    }
    plural = Pluralizer({"fungi": ["fungus"]}, lambda form: freq.get(form, 0.0))
    add_plurals(nouns, plural, lambda form: freq.get(form, 0.0))
    assert nouns["fungus"].plurals == ["fungi"] and nouns["fungi"].singulars == ["Fungi"]
    # the very same string is one noun's: the nationality's plural
    assert "english people" not in nouns
    assert nouns["english person"].plurals == ["English people"]
