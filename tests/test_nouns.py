"""Unit tests of noun curation: canonical forms, plurals, multiplicities, thresholds."""

import math

import pytest

from novic.classlists import class_list_floors, read_class_list
from novic.dictionary import noun_row, noun_table
from novic.forms import Pluralizer, canonical, surface_forms
from novic.frequency import WordFrequency, multiplicity, split_multiplicity
from novic.nouns import NounDraft, build_dictionary, collect_nouns, threshold_vocab, vocab_stats


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("dog", "dog"),
        ("T-shirt", "t shirt"),
        ("St. John's wort", "st johns wort"),
        ("U.S.A.", "usa"),
        ("AC/DC", "ac dc"),
        ("  sea  -  lion ", "sea lion"),
        ("café", "cafe"),
        ("jack-o'-lantern", "jack o lantern"),
        ("x", None),  # too short
        ("&", None),
        ("bird's-eye", "birds eye"),
        ("ballet (dance)", None),  # characters outside [a-z0-9 ]
    ],
)
def test_canonical(form, expected):
    assert canonical(form) == expected


def test_surface_forms_join_initials_and_add_plain_variants():
    assert surface_forms("U._S._A.") == ["U.S.A.", "USA"]
    assert surface_forms("St._John's_wort") == [
        "St. John's wort",
        "St John's wort",
        "St. Johns wort",
        "St Johns wort",
    ]
    assert surface_forms("dog") == ["dog"]
    # every variant of a lemma shares its canonical form
    assert {canonical(f) for f in surface_forms("St._John's_wort")} == {"st johns wort"}


def test_collect_nouns_merges_lemmas_by_canonical_form():
    nouns = collect_nouns(
        [
            ("dog.n.01", [("dog", 42), ("domestic_dog", 0)]),
            ("frump.n.01", [("dog", 1)]),
            ("tee_shirt.n.01", [("T-shirt", 0), ("tee_shirt", 2), ("t-shirt", 5)]),
        ]
    )
    assert set(nouns) == {"dog", "domestic dog", "t shirt", "tee shirt"}
    assert nouns["dog"].synsets == ["dog.n.01", "frump.n.01"]
    # the pretty form is the surface form used most often
    assert nouns["t shirt"].singulars == ["T-shirt", "t-shirt"]
    assert nouns["t shirt"].pretty == "t-shirt"


def test_pluralizer_prefers_wordnet_exceptions_and_needs_attestation():
    attested = {"dogs", "police dogs", "buses"}.__contains__
    plural = Pluralizer({"mice": ["mouse"], "oxen": ["ox"], "fungi": ["fungus"]}, attested)
    assert plural("mouse") == ["mice"]  # irregular, from noun.exc
    assert plural("dog") == ["dogs"]
    assert plural("police dog") == ["police dogs"]
    assert plural("bus") == ["buses"]
    assert plural("cat") == []  # "cats" not attested in this toy table
    assert plural("Canis") == []  # proper and Latin names get no plural
    assert plural("Boston") == []


def test_multiplicity_formula():
    assert multiplicity(2.5e-6) == 1.0
    assert multiplicity(1e-9) == 1.0  # rare words count as the floor
    assert multiplicity(2.5e-6 * math.e) == pytest.approx(2.5)
    assert multiplicity(2.5e-6 * math.exp(10)) == pytest.approx(16.0)  # the reference's maximum


def test_split_multiplicity_is_proportional_with_floor_one():
    assert split_multiplicity(12, [11.2, 9.9]) == [6, 6]
    assert split_multiplicity(10, [3.0, 1.0]) == [8, 2]
    assert split_multiplicity(1, [5.0, 1.0, 1.0]) == [1, 1, 1]


def test_word_frequency_is_relative_to_the_and_penalises_phrases():
    freq = WordFrequency(phrase_penalty=100)
    assert freq("the") == pytest.approx(1.0)
    assert 0 < freq("dog") < 0.01
    assert freq("police dog") < freq("dog") / 10
    assert freq.total(["dog", "Dog"]) == pytest.approx(freq("dog"))  # same tokens count once


def test_class_lists(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# header\nT-shirt, top\n\nankle boot  # a comment\n")
    rows = read_class_list(path)
    assert rows == [["T-shirt", "top"], ["ankle boot"]]
    floors = class_list_floors(rows, ranked=[0.5, 0.2, 0.1])
    # two rows: floor = 2nd most frequent noun, shared among a row's synonyms
    assert floors == {"t shirt": 0.1, "top": 0.1, "ankle boot": 0.2}


def _noun_table(multiplicities):
    return noun_table(
        noun_row(i, [f"noun {i}"], [f"noun {i}s"], singulars_freq=[s], plurals_freq=[p],
                 frequency=0.0)
        for i, (s, p) in enumerate(multiplicities, 1)
    )  # fmt: skip


def test_threshold_keeps_nouns_whose_multiplicity_exceeds_t():
    table = _noun_table([(1, 1), (2, 1), (5, 4), (1, 0)])
    assert threshold_vocab(table, 0).num_rows == 4
    assert threshold_vocab(table, 2).column("id").to_pylist() == [2, 3]  # 3 > 2, 9 > 2
    assert threshold_vocab(table, 3).column("id").to_pylist() == [3]
    assert threshold_vocab(table, 9).num_rows == 0
    stats = vocab_stats(threshold_vocab(table, 2))
    assert stats["nouns"] == 2
    assert (stats["singular_weighted"], stats["plural_weighted"]) == (7, 5)


def test_build_dictionary_boosts_and_adds_class_nouns():
    freq = WordFrequency()
    nouns = {
        "dog": NounDraft("dog", "dog", 1, ["dog"]),
        "aardwolf": NounDraft("aardwolf", "aardwolf", 1, ["aardwolf"]),
    }
    plural = Pluralizer({}, attested=lambda form: freq(form) > 0)
    table = build_dictionary(
        nouns, freq, plural, {"list.txt": [["aardwolf"], ["ankle boot"]]}, add_class_nouns=True
    )
    rows = {r["target_noun"]: r for r in table.to_pylist()}
    assert list(rows) == ["aardwolf", "ankle boot", "dog"]  # ids follow canonical order
    assert [r["id"] for r in rows.values()] == [1, 2, 3]
    assert rows["dog"]["plurals"] == ["dogs"]
    # two classes: the floor is the 2nd most frequent noun's frequency (aardwolf's own, here)
    assert rows["aardwolf"]["frequency"] >= freq("aardwolf")
    assert rows["ankle boot"]["frequency"] >= freq("aardwolf")
    for row in rows.values():
        total = sum(row["singulars_freq"]) + sum(row["plurals_freq"])
        assert total >= max(round(multiplicity(row["frequency"])), 1) - 1
        assert all(m >= 1 for m in row["singulars_freq"] + row["plurals_freq"])


def test_sense_share_discounts_other_senses():
    from novic.frequency import sense_share

    # "dog": the animal sense (42 uses) and 5 other selected senses vs a verb sense (2 uses)
    assert sense_share([(True, 42), *[(True, 0)] * 5, (False, 2)]) == pytest.approx(48 / 51)
    # "have": one unused noun sense vs verb senses used 1202 and 377 times
    assert sense_share([(True, 0), (False, 1202), (False, 377)]) == pytest.approx(1 / 1582)
    assert sense_share([]) == 1.0


def test_read_word_list(tmp_path):
    from novic.frequency import read_word_list

    path = tmp_path / "words.txt"
    path.write_text("# comment\nOr\n\ncan  # modal\n")
    assert read_word_list(path) == {"or", "can"}
