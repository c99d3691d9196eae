"""Synset selection by inclusion: the rules file, its semantics, and the shipped rules on
WordNet 3.0."""

from pathlib import Path

import pytest

from novic.schema import defaults
from novic.synsets import (
    RulesError,
    parse_rules,
    resolve_rules,
    select_synsets,
    select_wordnet_synsets,
)
from novic.wordnet import open_wordnet

REPO = Path(__file__).resolve().parent.parent
DEBIAN_DICT = Path("/usr/share/wordnet")


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
        ("Y run.v.01\n", "rules.txt:1: 'run.v.01' is not a noun synset name"),
        ("N dog.n.01\nE dog.n.01\n", "rules.txt:2: dog.n.01 already has a rule on line 1"),
        ("EI dog.n.01\n", "rules.txt:1: E and I contradict each other"),
        ("# x\nNY dog.n.01\n", "rules.txt:2: N and Y contradict each other"),
    ],
)
def test_malformed_rules_name_file_and_line(tmp_path, text, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(_write(tmp_path, text))


def test_resolve_rules_names_unknown_and_aliased_synsets(tmp_path):
    names = {"dog.n.01": "dog.n.01", "domestic_dog.n.01": "dog.n.01"}

    def lookup(name):
        return names[name]

    rules = parse_rules(_write(tmp_path, "Y dog.n.01\nE no_such.n.01\n"))
    with pytest.raises(RulesError, match=r"rules.txt:2: unknown synset no_such.n.01"):
        resolve_rules(rules, lookup, "rules.txt")
    rules = parse_rules(_write(tmp_path, "Y dog.n.01\nE domestic_dog.n.01\n"))
    with pytest.raises(RulesError, match=r"rules.txt:2: domestic_dog.n.01 is dog.n.01, which"):
        resolve_rules(rules, lookup, "rules.txt")


# A toy hierarchy: entity > thing > {animal > {dog > rex (an instance), cat > kitten},
# toy > ball, idea > {plan, joy}}; kitten is also a toy (two hypernym paths).
PARENTS = {
    "entity.n.01": [],
    "thing.n.01": ["entity.n.01"],
    "animal.n.01": ["thing.n.01"],
    "dog.n.01": ["animal.n.01"],
    "rex.n.01": ["dog.n.01"],
    "cat.n.01": ["animal.n.01"],
    "kitten.n.01": ["cat.n.01", "toy.n.01"],
    "toy.n.01": ["thing.n.01"],
    "ball.n.01": ["toy.n.01"],
    "idea.n.01": ["thing.n.01"],
    "plan.n.01": ["idea.n.01"],
    "joy.n.01": ["idea.n.01"],
}
LEXNAME = {
    "animal.n.01": "noun.animal",
    "dog.n.01": "noun.animal",
    "rex.n.01": "noun.animal",
    "cat.n.01": "noun.animal",
    "kitten.n.01": "noun.animal",
    "toy.n.01": "noun.artifact",
    "ball.n.01": "noun.artifact",
    "idea.n.01": "noun.cognition",
    "plan.n.01": "noun.cognition",
    "joy.n.01": "noun.feeling",
}


def _select(tmp_path, text, lexnames=("animal", "artifact", "feeling"), instances=False):
    return select_synsets(
        PARENTS,
        PARENTS.__getitem__,
        lambda name: LEXNAME.get(name, "noun.Tops"),
        lexnames,
        parse_rules(_write(tmp_path, text)),
        lambda name: name == "rex.n.01",
        instances,
    )


def test_nothing_is_selected_without_a_rule(tmp_path):
    assert _select(tmp_path, "") == []
    assert _select(tmp_path, "N thing.n.01\n") == []


def test_y_takes_in_the_candidates_of_a_subtree(tmp_path):
    # not thing (noun.Tops), idea or plan (noun.cognition), nor rex (an instance)
    assert _select(tmp_path, "Y thing.n.01\n") == [
        "animal.n.01",
        "dog.n.01",
        "cat.n.01",
        "kitten.n.01",
        "toy.n.01",
        "ball.n.01",
        "joy.n.01",
    ]
    # the lexnames filter the subtree
    assert _select(tmp_path, "Y thing.n.01\n", lexnames=["feeling"]) == ["joy.n.01"]


def test_i_takes_in_one_synset_whatever_its_lexname_or_kind(tmp_path):
    assert _select(tmp_path, "I cat.n.01\n") == ["cat.n.01"]  # not kitten
    assert _select(tmp_path, "I thing.n.01\nI plan.n.01\nI rex.n.01\n") == [
        "thing.n.01",
        "rex.n.01",
        "plan.n.01",
    ]
    assert _select(tmp_path, "IY animal.n.01\n", lexnames=["animal"])[0] == "animal.n.01"


def test_deeper_subtree_rules_override_higher_ones(tmp_path):
    selected = _select(tmp_path, "Y thing.n.01\nN animal.n.01\nY cat.n.01\n")
    assert selected == ["cat.n.01", "kitten.n.01", "toy.n.01", "ball.n.01", "joy.n.01"]
    selected = _select(tmp_path, "N thing.n.01\nY animal.n.01\nN cat.n.01\n")
    assert selected == ["animal.n.01", "dog.n.01"]  # kitten: N through cat and through thing


def test_precedence_e_i_y_n(tmp_path):
    # E beats an inherited Y; I beats an inherited N
    assert "dog.n.01" not in _select(tmp_path, "Y animal.n.01\nE dog.n.01\n")
    assert _select(tmp_path, "N thing.n.01\nI dog.n.01\n") == ["dog.n.01"]
    # Y beats N: a subtree rule on the synset itself decides over one inherited
    assert _select(tmp_path, "N animal.n.01\nY dog.n.01\n") == ["dog.n.01"]
    # combined tags: EY drops the root but keeps its subtree; IN keeps the root only
    assert _select(tmp_path, "EY animal.n.01\n") == ["dog.n.01", "cat.n.01", "kitten.n.01"]
    assert _select(tmp_path, "Y thing.n.01\nIN dog.n.01\n", instances=True)[:3] == [
        "animal.n.01",
        "dog.n.01",
        "cat.n.01",
    ]
    assert "rex.n.01" not in _select(tmp_path, "Y thing.n.01\nIN dog.n.01\n", instances=True)


def test_y_on_one_path_and_n_on_another_includes(tmp_path):
    selected = _select(tmp_path, "Y toy.n.01\nN cat.n.01\n")
    assert selected == ["kitten.n.01", "toy.n.01", "ball.n.01"]
    selected = _select(tmp_path, "Y animal.n.01\nN toy.n.01\n")
    assert "kitten.n.01" in selected and "ball.n.01" not in selected


def test_instances_are_out_unless_allowed_or_named(tmp_path):
    assert "rex.n.01" not in _select(tmp_path, "Y animal.n.01\n")
    assert "rex.n.01" in _select(tmp_path, "Y animal.n.01\n", instances=True)
    assert "rex.n.01" not in _select(tmp_path, "Y animal.n.01\nN dog.n.01\n", instances=True)
    assert _select(tmp_path, "I rex.n.01\n") == ["rex.n.01"]


def test_instances_switch_is_in_the_schema():
    params = defaults("nouns")
    assert params["instances"] is False
    assert "skip_instances" not in params


# --- The shipped rules on WordNet 3.0 -----------------------------------------------------------

KEPT = [
    # organisms, food and drink
    "dog.n.01", "giraffe.n.01", "rose.n.01", "tree.n.01", "pizza.n.01", "banana.n.02",
    "broccoli.n.02", "frank.n.02", "coffee.n.01", "wine.n.01",
    # artifacts
    "laptop.n.01", "umbrella.n.01", "toothbrush.n.01", "bicycle.n.01", "chair.n.01",
    "shirt.n.01", "guitar.n.01", "sword.n.01", "house.n.01", "bridge.n.01", "teddy.n.01",
    "wineglass.n.01", "hydrant.n.02", "cellular_telephone.n.01", "traffic_light.n.01",
    # nature, phenomena, money, the body
    "mountain.n.01", "river.n.01", "moon.n.01", "snow.n.02", "rainbow.n.01",
    "lightning.n.01", "smoke.n.01", "fire.n.01", "coin.n.01", "hand.n.01", "eye.n.01",
    # people by look, occupation and activity
    "person.n.01", "woman.n.01", "child.n.01", "baby.n.01", "old_man.n.01", "fireman.n.04",
    "nurse.n.01", "chef.n.01", "pilot.n.01", "soldier.n.01", "policeman.n.01", "skier.n.01",
    "cyclist.n.01", "surfer.n.01", "tennis_player.n.01",
]  # fmt: skip
EXCLUDED = [
    # people by relation, belief, money, law, character
    "stockholder.n.01", "widower.n.01", "cousin.n.01", "stepson.n.01", "elitist.n.01",
    "believer.n.01", "debtor.n.01", "plaintiff.n.01", "layman.n.01", "informer.n.01",
    # taxa above the species
    "platalea.n.01", "canis.n.01", "ochnaceae.n.01", "carnivora.n.01",
    # named instances
    "nile.n.01", "sirius.n.01", "harvard_university.n.01", "einstein.n.01",
    # abstractions
    "feeling.n.01", "joy.n.01", "income.n.01", "tax.n.01", "luck.n.02", "nonevent.n.01",
    "time.n.01", "need.n.02", "thing.n.12", "world.n.08",
    # the invisible
    "bacteria.n.01", "electron.n.01", "artery.n.01",
]  # fmt: skip


@pytest.fixture(scope="module")
def shipped():
    """The synsets the shipped rules select on Debian's WordNet 3.0, with its reader."""
    if not (DEBIAN_DICT / "data.noun").exists():
        pytest.skip("Debian's wordnet-base is not installed (make test installs it)")
    path = REPO / "resources/synset_rules.txt"
    params = defaults("nouns")
    with open_wordnet("dict", DEBIAN_DICT) as wn:
        rules = resolve_rules(parse_rules(path), lambda n: wn.reader.synset(n).name(), str(path))
        selected = select_wordnet_synsets(wn.reader, rules, params["lexnames"], params["instances"])
        yield wn.reader, rules, set(selected)


def test_shipped_rules_name_canonical_synsets(shipped):
    reader, rules, _ = shipped
    assert all(reader.synset(name).name() == name for name in rules)


def test_shipped_selection_size_and_spot_checks(shipped):
    reader, _, selected = shipped
    assert 20_000 < len(selected) < 28_000  # the reference selects 23,942 of WordNet 3.1
    for name in KEPT + EXCLUDED:
        assert reader.synset(name).name() == name  # the spot checks exist in WordNet 3.0
    assert [name for name in KEPT if name not in selected] == []
    assert [name for name in EXCLUDED if name in selected] == []


def test_shipped_selection_leaves_out_taxa_instances_and_most_people(shipped):
    reader, _, selected = shipped
    synsets = [reader.synset(name) for name in selected]
    taxa = reader.synset("taxonomic_group.n.01")
    assert sum(taxa in s.closure(lambda s: s.hypernyms()) for s in synsets) < 10
    instances = [s.name() for s in synsets if s.instance_hypernyms()]
    assert sorted(instances) == ["moon.n.01", "pyramid.n.03", "sun.n.01"]  # an I rule each
    people = sum(s.lexname() == "noun.person" for s in synsets)
    assert 800 < people < 2_500  # of 11,087 person synsets
    assert not any(s.lexname() == "noun.feeling" for s in synsets)
