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
    # forms that differ only in case are one form (the lowercase one), also the pretty form
    assert nouns["t shirt"].singulars == ["t-shirt"]
    assert nouns["t shirt"].pretty == "t-shirt"


def test_pluralizer_uses_wordnet_exceptions_and_needs_attestation():
    attested = {"mice", "dogs", "police dogs", "buses", "oxen"}
    plural = Pluralizer({"mice": ["mouse"], "oxen": ["ox"]}, lambda f: float(f in attested))
    assert plural("mouse") == ["mice"]  # irregular, from noun.exc
    assert plural("ox") == ["oxen"]
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
    scaled = WordFrequency(scale=2.0, phrase_penalty=100)
    assert scaled("dog") == pytest.approx(2 * freq("dog"))
    assert scaled("so-and-so") == pytest.approx(2 * freq("so-and-so"))  # three tokens: /100^2
    assert freq("so-and-so") < freq("so") / 100**2 * 1.01


def test_word_frequency_reads_two_word_phrases_from_the_bigram_table():
    bigrams = {"hot dog": 3e-5, "johns wort": 1e-5}
    freq = WordFrequency(phrase_penalty=10, bigrams=bigrams, bigram_floor=4e-6)
    assert freq("hot dog") == 3e-5
    assert freq("Hot dog") == 3e-5  # the table is lowercase
    assert freq("John's wort") == 1e-5  # apostrophes removed, like Norvig's counts
    # missing from the table: the estimate, but below the table's smallest entry
    assert freq("police dog") <= 4e-6
    assert freq("dog") == WordFrequency()("dog")  # single words are wordfreq's
    assert freq("merry-go-round") == WordFrequency(phrase_penalty=10)("merry-go-round")
    # shares weight each form
    assert freq.total(["hot dog", "Hot-dog"], share=lambda f: 0.5) == pytest.approx(1.5e-5)


def test_web1t_bigrams_are_relative_to_the():
    from novic.frequency import web1t_bigrams

    bigrams, floor = web1t_bigrams()
    assert len(bigrams) > 250_000
    assert floor == pytest.approx(100_000 / 23_135_851_162)
    # case variants are summed: "cell phone" and "Cell phone" are both in count_2w
    assert bigrams["cell phone"] > 4e-4
    assert bigrams["ice cream"] > bigrams["hot dog"] > floor
    assert "fire hydrant" not in bigrams  # rarer than the table's cut


def _homographs(tmp_path, text):
    path = tmp_path / "homographs.txt"
    path.write_text(text)
    return path


def test_read_homographs(tmp_path):
    from novic.frequency import read_homographs

    path = _homographs(tmp_path, "# header\nNeed 0  # a verb\n\nso-and-so 0.5\nDr. 0.01\n")
    assert read_homographs(path) == {"need": 0.0, "so and so": 0.5, "dr": 0.01}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("need\n", "homographs.txt:1: expected 'form share'"),
        ("\nneed often\n", "homographs.txt:2: expected 'form share'"),
        ("need 1.5\n", "homographs.txt:1: expected 'form share' with a share between 0 and 1"),
        ("need -0.1\n", "homographs.txt:1: expected"),
        ("0.5\n", "homographs.txt:1: expected"),
        ("& 0.5\n", "homographs.txt:1: '&' has no canonical form"),
        ("need 0\nNeed 0.1\n", "homographs.txt:2: 'need' already listed on line 1"),
    ],
)
def test_malformed_homographs_name_file_and_line(tmp_path, text, message):
    from novic.frequency import HomographError, read_homographs

    with pytest.raises(HomographError, match=message):
        read_homographs(_homographs(tmp_path, text))


def test_form_shares_pass_to_plurals_made_from_a_listed_singular():
    from novic.frequency import form_shares

    plural = {"need": ["needs"], "saw": ["saws"], "dog": ["dogs"]}.get
    homographs = {"need": 0.0, "saw": 0.01, "saws": 0.5}
    assert form_shares(["need"], ["needs"], homographs, lambda s: plural(s, [])) == {
        "need": 0.0,
        "needs": 0.0,
    }
    # an entry for the plural itself wins over the singular's
    assert form_shares(["saw"], ["saws"], homographs, lambda s: plural(s, [])) == {
        "saw": 0.01,
        "saws": 0.5,
    }
    assert form_shares(["dog"], ["dogs"], homographs, lambda s: plural(s, [])) == {}


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
    plural = Pluralizer({}, freq)
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


def test_build_dictionary_applies_homograph_shares():
    freq = WordFrequency()
    plural = Pluralizer({}, freq)

    def build(homographs):
        nouns = {
            "need": NounDraft("need", "need", 1, ["need"]),
            "dog": NounDraft("dog", "dog", 1, ["dog"]),
        }
        table = build_dictionary(nouns, freq, plural, homographs=homographs)
        return {r["target_noun"]: r for r in table.to_pylist()}

    plain, shared = build({}), build({"need": 0.0})
    assert plain["need"]["frequency"] > 1e-3  # the verb's frequency
    assert shared["need"]["frequency"] == 0.0
    assert shared["need"]["plurals"] == ["needs"]
    assert sum(shared["need"]["singulars_freq"] + shared["need"]["plurals_freq"]) == 2
    assert shared["dog"] == plain["dog"]


def test_reference_comparison():
    from novic.nouns import comparison_line, reference_comparison

    table = _noun_table([(1, 1), (2, 1), (5, 4), (8, 4)])
    comparison = reference_comparison(table)
    assert comparison["ft0"] == {"nouns": 4, "reference_nouns": 42_919, "ratio": 0.0}
    assert comparison["ft2"]["nouns"] == 3
    assert comparison["ft6"]["step"] == round(2 / 3, 3)
    assert comparison["ft9"]["nouns"] == 1
    assert comparison["ft9"]["reference_step"] == round(2_919 / 5_899, 3)
    assert comparison_line(comparison).startswith("FT0/FT2/FT6/FT9: 4/3/2/1 nouns, paper 42,919/")


def test_sense_share_discounts_other_senses():
    from novic.frequency import sense_share

    # "dog": the animal sense (42 uses) and 5 other selected senses vs a verb sense (2 uses)
    assert sense_share([(True, 42), *[(True, 0)] * 5, (False, 2)]) == pytest.approx(48 / 51)
    # "have": one unused noun sense vs verb senses used 1202 and 377 times
    assert sense_share([(True, 0), (False, 1202), (False, 377)]) == pytest.approx(1 / 1582)
    assert sense_share([]) == 1.0


def test_dropped_homographs_name_no_noun(tmp_path):
    from novic.frequency import read_homographs

    path = tmp_path / "homographs.txt"
    path.write_text("soul  drop  # a person, mostly the spirit\nneed 0\n")
    homographs = read_homographs(path)
    assert homographs == {"soul": None, "need": 0.0}
    freq = WordFrequency()
    nouns = {
        "soul": NounDraft("soul", "soul", 1, ["soul"]),
        "person": NounDraft("person", "person", 1, ["person", "soul"]),
        "need": NounDraft("need", "need", 1, ["need"]),
    }
    table = build_dictionary(nouns, freq, Pluralizer({}, freq), homographs=homographs)
    rows = {r["target_noun"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["need", "person"]
    assert "soul" not in rows["person"]["singulars"] and "souls" not in rows["person"]["plurals"]
