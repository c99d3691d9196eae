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
