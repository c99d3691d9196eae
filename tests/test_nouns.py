"""Unit tests of noun curation: canonical forms, plurals, multiplicities, rules, thresholds."""

import math

import pytest

from novic.classlists import class_list_floors, read_class_list
from novic.dictionary import noun_row, noun_table
from novic.forms import Pluralizer, canonical, surface_forms
from novic.frequency import WordFrequency, multiplicity, split_multiplicity
from novic.nouns import NounDraft, build_dictionary, collect_nouns, threshold_vocab, vocab_stats
from novic.synsets import RulesError, parse_rules, select_synsets


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


def _write(tmp_path, text):
    path = tmp_path / "rules.txt"
    path.write_text(text)
    return path


def test_parse_rules(tmp_path):
    rules = parse_rules(_write(tmp_path, "# comment\nN feeling.n.01  # why\n\nEY object.n.01\n"))
    assert rules["feeling.n.01"].tags == {"N"}
    assert rules["object.n.01"].tags == {"E", "Y"}
    assert rules["object.n.01"].line == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("X dog.n.01\n", "rules.txt:1: expected 'TAGS synset'"),
        ("N\n", "rules.txt:1: expected"),
        ("N dog.n.01 extra\n", "rules.txt:1: expected"),
        ("\nN dog\n", "rules.txt:2: 'dog' is not a noun synset name"),
        ("N dog.n.01\nE dog.n.01\n", "rules.txt:2: dog.n.01 already has a rule on line 1"),
    ],
)
def test_malformed_rules_name_file_and_line(tmp_path, text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(_write(tmp_path, text))


# A toy hierarchy: entity > thing > {animal > {dog, cat > kitten}, idea > {plan, joy}};
# "kitten" also has the parent "toy" (under thing) to test multiple inheritance.
PARENTS = {
    "entity.n.01": [],
    "thing.n.01": ["entity.n.01"],
    "animal.n.01": ["thing.n.01"],
    "dog.n.01": ["animal.n.01"],
    "cat.n.01": ["animal.n.01"],
    "toy.n.01": ["thing.n.01"],
    "kitten.n.01": ["cat.n.01", "toy.n.01"],
    "idea.n.01": ["thing.n.01"],
    "plan.n.01": ["idea.n.01"],
    "joy.n.01": ["idea.n.01"],
    "rex.n.01": ["dog.n.01"],  # an instance: a named dog
}
LEXNAME = {
    "animal.n.01": "noun.animal",
    "dog.n.01": "noun.animal",
    "cat.n.01": "noun.animal",
    "kitten.n.01": "noun.animal",
    "rex.n.01": "noun.animal",
    "toy.n.01": "noun.artifact",
    "plan.n.01": "noun.cognition",
    "joy.n.01": "noun.feeling",
}


def _select(tmp_path, rules_text, lexnames=("animal", "artifact", "feeling"), **kwargs):
    rules = parse_rules(_write(tmp_path, rules_text))
    return select_synsets(
        PARENTS,
        PARENTS.__getitem__,
        lambda n: LEXNAME.get(n, "noun.Tops"),
        lexnames,
        rules,
        **kwargs,
    )


def test_selection_by_lexname_only(tmp_path):
    assert _select(tmp_path, "") == [
        "animal.n.01",
        "dog.n.01",
        "cat.n.01",
        "toy.n.01",
        "kitten.n.01",
        "joy.n.01",
        "rex.n.01",
    ]


def test_rule_precedence(tmp_path):
    # N removes a subtree; a deeper Y restores part of it; I beats N; E beats everything.
    selected = _select(tmp_path, "N animal.n.01\nY cat.n.01\nI dog.n.01\nE kitten.n.01\n")
    assert selected == ["dog.n.01", "cat.n.01", "toy.n.01", "joy.n.01"]  # not rex: I is not Y
    # Y on a subtree includes synsets outside the lexnames; E on the same line drops the root.
    assert _select(tmp_path, "EY idea.n.01\n") == [
        "animal.n.01",
        "dog.n.01",
        "cat.n.01",
        "toy.n.01",
        "kitten.n.01",
        "plan.n.01",
        "joy.n.01",
        "rex.n.01",
    ]


def test_y_wins_over_n_across_hypernym_paths(tmp_path):
    selected = _select(tmp_path, "N cat.n.01\nY toy.n.01\n")
    assert "kitten.n.01" in selected  # N via cat, Y via toy
    assert "cat.n.01" not in selected


def test_instances_of_skipped_lexnames(tmp_path):
    selected = _select(
        tmp_path, "", is_instance=lambda n: n == "rex.n.01", skip_instances=["animal"]
    )
    assert "rex.n.01" not in selected and "dog.n.01" in selected
    included = _select(
        tmp_path, "I rex.n.01\n", is_instance=lambda n: n == "rex.n.01", skip_instances=["animal"]
    )
    assert "rex.n.01" in included


def test_class_lists(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# header\nT-shirt, top\n\nankle boot  # a comment\n")
    rows = read_class_list(path)
    assert rows == [["T-shirt", "top"], ["ankle boot"]]
    index = {"t shirt": "t shirt", "top": "top", "ankle boot": "ankle boot"}
    floors = class_list_floors(rows, [0.5, 0.2, 0.1], index)
    # two rows: floor = 2nd most frequent noun, shared among a row's nouns
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
