"""Class lists (novic.classlists): the shipped files, their nouns, the floor and the coverage."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from novic.classlists import (
    class_list_floors,
    class_nouns,
    coverage,
    is_label,
    read_class_list,
    row_targets,
    variant_index,
)
from novic.dictionary import noun_row, noun_table
from novic.forms import Pluralizer
from novic.frequency import WordFrequency
from novic.nouns import NounDraft, build_dictionary, class_coverage
from novic.schema import defaults

REPO = Path(__file__).resolve().parent.parent
CLASS_NAMES = REPO / "resources" / "class_names"

# Shipped lists and their number of classes.
SIZES = {
    "caltech101": 101,
    "cifar10": 10,
    "cifar100": 100,
    "coco": 80,
    "cub200": 200,
    "fashion_mnist": 10,
    "flowers102": 102,
    "food101": 101,
    "imagenet1k": 1000,
    "imagenet_a": 200,
    "imagenet_r": 200,
    "imagenette": 10,
    "imagewoof": 10,
    "lvis": 1203,
    "objects365": 365,
    "openimages": 601,
    "oxford_pets": 37,
    "stanford_cars": 196,
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_shipped_lists_have_their_classes_and_name_their_source(name: str) -> None:
    path = CLASS_NAMES / f"{name}.txt"
    rows = read_class_list(path)
    assert len(rows) == SIZES[name]
    header = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.startswith("# ") and len(header) > 40  # what the list is and where it is from
    assert all(name.strip() == name and name for row in rows for name in row)


def test_configured_lists_exist_and_object_lists_name_nouns() -> None:
    nouns = defaults("nouns")
    for path in nouns["class_lists"] + nouns["general_lists"]:
        assert (REPO / path).is_file(), path
    for path in nouns["class_lists"]:  # an object class without a noun would add nothing
        rows = read_class_list(REPO / path)
        assert not [row for row in rows if not class_nouns(row)], path
    assert "resources/class_names/stanford_cars.txt" not in nouns["general_lists"]


def test_imagenet_labels_are_followed_by_their_nouns() -> None:
    rows = read_class_list(CLASS_NAMES / "imagenet1k.txt")
    labels = {row[0]: row[1:] for row in rows if is_label(row[0])}
    assert len(labels) == 17
    assert labels["bell or wind chime"] == ["bell", "wind chime"]
    assert labels["cardboard box / carton"] == ["cardboard box", "carton"]
    assert labels["vaulted or arched ceiling"] == ["vaulted ceiling", "arched ceiling"]
    assert labels["kite (bird of prey)"] == ["kite"]
    assert all(not is_label(row[0]) for row in rows if len(row) == 1)


def test_labels_are_not_nouns() -> None:
    assert is_label("bell or wind chime") and is_label("baluster / handrail")
    assert is_label("kite (bird of prey)")
    assert not is_label("orange") and not is_label("fish and chips")
    assert class_nouns(["bell or wind chime", "bell", "wind chime", "--"]) == ["bell", "wind chime"]


def test_names_stand_for_the_noun_they_are_a_variant_of() -> None:
    index = variant_index(
        [("ski", ["ski", "skis"]), ("glass", ["glass", "glasses"]), ("glasses", ["glasses"])]
    )
    assert index["skis"] == "ski"
    assert index["glasses"] == "glasses"  # a target beats another noun's plural
    assert row_targets(["skis", "Ski", "snow ski"], index) == ["ski"]


def test_floor_is_shared_among_a_rows_distinct_nouns() -> None:
    index = {"ski": "ski", "skis": "ski", "sled": "sled", "sledge": "sled", "toboggan": "toboggan"}
    rows = [["ski", "skis"], ["sled", "sledge", "toboggan"], ["yeti"]]
    floors = class_list_floors(rows, [0.9, 0.6, 0.3, 0.1], index)
    # three classes: the 3rd most frequent noun; "skis" is "ski", "yeti" is no noun
    assert floors == {"ski": 0.3, "sled": 0.15, "toboggan": 0.15}


def test_coverage_counts_classes_with_a_noun_in_the_vocabulary() -> None:
    rows = [["bell or wind chime", "bell", "wind chime"], ["spiral or coil", "spiral"], ["ox"]]
    assert coverage(rows, {"wind chime": "wind chime", "ox": "ox"}) == pytest.approx(2 / 3)
    assert coverage(rows, {"bell or wind chime": "x"}) == 0.0  # a label names no noun
    assert coverage([], {}) == 0.0


def _build(object_lists: dict, general_lists: dict):
    freq = WordFrequency()
    nouns = {name: NounDraft(name, name, 1, [name]) for name in ("dog", "ski", "aardwolf", "zebu")}
    plural = Pluralizer({}, freq)
    table = build_dictionary(nouns, freq, plural, object_lists, True, general_lists=general_lists)
    return {row["target_noun"]: row for row in table.to_pylist()}


def test_object_lists_add_nouns_and_general_lists_only_floor() -> None:
    # one-class lists: the floor is the most frequent noun's frequency ("dog")
    rows = _build(
        {"skis.txt": [["skis"]], "ramen.txt": [["ramen"]]},
        {"zebu.txt": [["zebu"]], "pho.txt": [["pho"]]},
    )
    assert "skis" not in rows and rows["ski"]["plurals"] == ["skis"]  # a variant, not a noun
    assert "ramen" in rows and "pho" not in rows  # objects add, general lists do not
    organic = {name: row["organic_multiplicity"] for name, row in rows.items()}
    assert organic["ramen"] == 0  # only a class list made it a noun
    floored = {name: sum(r["singulars_freq"]) + sum(r["plurals_freq"]) for name, r in rows.items()}
    for name in ("ski", "zebu"):
        assert 1 <= organic[name] < floored[name]  # lifted by a floor
    assert floored["aardwolf"] == organic["aardwolf"] < floored["zebu"]  # in no list


def test_class_coverage_organic_and_floored() -> None:
    vocab = noun_table(
        [
            noun_row(1, ["ski"], ["skis"], singulars_freq=[3], plurals_freq=[2]),
            noun_row(2, ["ramen"], singulars_freq=[9]),
        ]
    )
    organic = vocab.set_column(
        vocab.schema.get_field_index("organic_multiplicity"),
        "organic_multiplicity",
        pa.array([5, 0], pa.int32()),
    )
    lists = {"food": [["skis"], ["ramen"], ["pho"], ["cup or mug"]]}
    stats = class_coverage(organic, 2, lists)
    assert stats == {"food": {"classes": 4, "floored": 0.5, "organic": 0.25}}
    assert class_coverage(organic, 5, lists)["food"]["organic"] == 0.0  # 5 does not exceed 5
    assert class_coverage(vocab, 2, lists)["food"]["organic"] is None  # unknown (null)
