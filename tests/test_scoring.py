"""Scoring: top-k accuracy, the reference's points on the hand-made annotation file, and the
MiniLM semantic similarity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novic.scoring import (
    AnnotationError,
    SentenceEncoder,
    load_annotations,
    load_specificity,
    score_predictions,
    semantic_similarity,
    topk_accuracy,
)

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "resources" / "sample_images"


def test_topk_accuracy_counts_any_correct_noun_in_the_first_k() -> None:
    preds = [["dog", "cat"], ["car", "truck", "bus"], ["apple"], []]
    correct = [{"cat"}, {"car", "auto"}, {"pear"}, {"x"}]
    assert topk_accuracy(preds, correct, ks=(1, 2)) == {"top1": 0.25, "top2": 0.5}


def test_points_on_the_hand_made_annotation_file() -> None:
    annotations = load_annotations(SAMPLES / "annotations.json")
    specificity = load_specificity(SAMPLES / "specificity.json")
    assert set(annotations) == {
        "astronaut.jpg", "cat.jpg", "coffee.jpg", "rocket.jpg", "grace_hopper.jpg",
    }  # fmt: skip
    predictions = {
        "astronaut.jpg": ["Space-Suit", "flag"],  # correct primary (canonicalised)
        "cat.jpg": ["cat", "kitten"],  # correct primary, coarse (0.5); kitten is specific
        "coffee.jpg": ["saucer", "drink"],  # correct secondary 0.8
        "rocket.jpg": ["launch tower", "sky"],  # unannotated, then close secondary 0.4
        # grace_hopper.jpg: no prediction at all
        "not_annotated.jpg": ["anything"],
    }
    top1 = score_predictions(predictions, annotations, specificity, k=1)
    assert top1.images == 5
    # top-1: 1 + 1 + 0.8 + 0 + 0
    assert top1.score == pytest.approx(2.8 / 5)
    assert top1.primary_score == pytest.approx(2.0 / 5)
    # cat counts half in the overall score
    assert top1.overall_score == pytest.approx((1 + 0.5 + 0.8) / 5)
    assert top1.missing == {"rocket.jpg": ["launch tower"]}
    assert top1.counts["correct_primary"] == 2
    assert top1.counts["missing"] == 1
    assert top1.counts["no_prediction"] == 1

    top2 = score_predictions(predictions, annotations, specificity, k=2)
    # top-2: astronaut 1, cat 1 (kitten, specific), coffee 0.8, rocket 0.4 (sky), hopper 0
    assert top2.score == pytest.approx(3.2 / 5)
    assert top2.overall_score == pytest.approx(3.2 / 5)
    assert top2.primary_score == pytest.approx(2.0 / 5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"a.jpg": {"correct": ["x"]}}, r"a\.jpg: unknown categories \['correct'\]"),
        ({"a.jpg": {"incorrect": "x"}}, r"a\.jpg\.incorrect: expected a list"),
        ({"a.jpg": {"incorrect": ["dog"], "correct_primary": ["Dog"]}}, "'Dog' is both"),
        (["a.jpg"], "expected an object"),
    ],
)
def test_bad_annotation_files_name_the_image_and_key(
    tmp_path: Path, content: object, message: str
) -> None:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(content))
    with pytest.raises(AnnotationError, match=message):
        load_annotations(path)


def test_class_annotations_grade_each_image_by_its_class() -> None:
    """Fashion-MNIST's class-level file: the label and its listed names are correct, neighbours
    close, every other predicted noun incorrect (`other`), so nothing is missing."""
    samples = [
        ("a", "T-shirt", ["t shirt", "girl"]),  # the label itself (canonicalised), then other
        ("b", "sneaker", ["shoe"]),  # a kind it belongs to: correct
        ("c", "coat", ["sweater", "coat"]),  # close first; the label is correct at top-2
        ("d", "dress", ["girl"]),  # not listed: other = incorrect
    ]
    annotations = load_annotations(REPO / "resources/annotations/fashion_mnist.json", samples)
    assert annotations["a"]["girl"] == annotations["d"]["girl"] == "incorrect"
    predictions = {image: nouns for image, _, nouns in samples}
    top1 = score_predictions(predictions, annotations, k=1)
    assert top1.score == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert top1.missing == {}
    assert top1.counts["incorrect"] == 1 and top1.counts["close_primary"] == 1
    assert score_predictions(predictions, annotations, k=2).score == pytest.approx(3 / 4)


def test_class_annotations_without_other_leave_unlisted_nouns_missing(tmp_path: Path) -> None:
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"format": "novic-class-annotations/1", "classes": {
        "dog": {"correct_primary": ["puppy"]}, "cat": {"close_primary": ["lion"]},
    }}))  # fmt: skip
    samples = [("1", "dog", ["puppy"]), ("2", "cat", ["tiger", "lion"])]
    score = score_predictions(dict((i, n) for i, _, n in samples), load_annotations(path, samples))
    assert score.score == pytest.approx(0.5) and score.missing == {"2": ["tiger"]}


@pytest.mark.parametrize(
    ("content", "samples", "message"),
    [
        ({"classes": {"dog": {}}, "other": "wrong"}, [], "other: 'wrong' is not one of"),
        ({"classes": {"dog": {"good": ["x"]}}}, [], r"dog: unknown categories \['good'\]"),
        ({"classes": {}}, [], "key 'classes': expected"),
        ({"classes": {"dog": {}}, "labels": 1}, [], r"unknown keys \['labels'\]"),
        ({"classes": {"dog": {}}}, [("7.png", "cat", ["x"])], "image 7.png: class 'cat' is not"),
        ({"classes": {"dog": {}}}, None, "need the benchmark's labelled images"),
    ],
)
def test_bad_class_annotation_files_name_the_key(
    tmp_path: Path, content: dict, samples: list | None, message: str
) -> None:
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"format": "novic-class-annotations/1", **content}))
    with pytest.raises(AnnotationError, match=message):
        load_annotations(path, samples)


def test_bad_specificity_values_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"tree": 2}))
    with pytest.raises(AnnotationError, match="tree: specificity must be in"):
        load_specificity(path)


def test_semantic_similarity_gives_credit_to_close_answers() -> None:
    encoder = SentenceEncoder()
    sims = semantic_similarity(
        ["dog", "puppy", "airplane", "coffee cup"], ["dog", "dog", "dog", "mug"], encoder
    )
    assert sims[0] == pytest.approx(1.0, abs=1e-5)
    assert sims[1] > 0.6 > 0.45 > sims[2]  # puppy is close to dog, airplane is not
    assert sims[3] > sims[2]
