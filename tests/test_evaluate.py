"""Evaluation: class names to model nouns, the image benchmarks (generated folders, a
Fashion-MNIST subset, the bundled photos with their annotation file), the text side and the
modality gap, with a random decoder on the tiny CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from tiny_decoder import NOUNS, write_tiny_decoder

from novic.checkpoint import load_decoder
from novic.datasets import FASHION_MNIST_ROOT
from novic.decoding import NounDecoder
from novic.dictionary import noun_row, noun_table
from novic.evaluate import (
    class_targets,
    evaluate_images,
    evaluate_text,
    modality_gap,
    variant_index,
)
from novic.settings import BenchmarkSettings, EvalSettings
from novic.shards import embedding_table

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
VARIANTS = {  # dictionary rows of the tiny model's nouns: singulars, plurals
    "t shirt": (["T-shirt", "tee shirt", "tshirt"], ["T-shirts"]),
    "trouser": (["trouser"], ["trousers", "pants"]),
    "sneaker": (["sneaker", "gym shoe"], ["sneakers"]),
    "ankle boot": (["ankle boot"], ["ankle boots"]),
    "cat": (["cat", "true cat"], ["cats"]),
}


def write_dictionary(path: Path, extra: dict[str, tuple[list[str], list[str]]] | None = None):
    """A noun table whose ids 1..N are the tiny model's nouns (plus unrelated extra rows)."""
    entries = [(i, noun, *VARIANTS.get(noun, ([noun], [noun + "s"]))) for i, noun in
               enumerate(NOUNS, 1)]  # fmt: skip
    for j, (noun, (sing, plur)) in enumerate((extra or {}).items(), len(NOUNS) + 1):
        entries.append((j, noun, sing, plur))
    rows = [noun_row(i, sing, plur, target=noun) for i, noun, sing, plur in entries]
    pq.write_table(noun_table(rows), path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    return {
        "model": write_tiny_decoder(root / "decoder.pt"),
        # "dustcart" belongs to a noun the model does not know
        "dictionary": write_dictionary(
            root / "dictionary.parquet", {"garbage truck": (["garbage truck", "dustcart"], [])}
        ),
        "root": root,
    }


def test_class_names_map_through_dictionary_variants(files: dict[str, Path]) -> None:
    _, targets, _ = load_decoder(files["model"])
    index = variant_index(files["dictionary"])
    classes = [["T-shirt", "top"], ["pants"], ["Cats"], ["dustcart"], ["Sneakers", "gym shoe"]]
    answers = class_targets(classes, index, targets.nouns, targets.noun_ids)
    assert answers == [["t shirt", "top"], ["trouser"], ["cat"], [], ["sneaker"]]


def make_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "sneaker", "dustcart"):
        for i in range(3):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG broken")
    return root


def test_image_folder_benchmark_writes_metrics_predictions_and_samples(
    files: dict[str, Path], tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "data")
    bench = BenchmarkSettings("toy", "folder", str(folder), prompts="cifar")
    settings = EvalSettings(gencfg="beam_k5_vnone_gp_t1_a0", batch_size=4, gap_samples=200)
    out = tmp_path / "out"
    metrics = evaluate_images(
        files["model"], bench, settings, files["dictionary"], CPU,
        out / "toy.json", out / "toy.predictions.json", out / "toy.samples.png",
    )  # fmt: skip
    assert metrics == json.loads((out / "toy.json").read_text())
    assert (metrics["images"], metrics["evaluated"], metrics["unreadable"]) == (10, 9, 1)
    assert "broken.png" in metrics["unreadable_examples"][0]
    assert metrics["random_embedder"] and metrics["device"] == "cpu"
    assert len(metrics["config_sha256"]) == 64
    assert metrics["guided"]["classes_unmapped"] == ["dustcart"]
    assert metrics["guided"]["guide_nouns"] == 2
    for key in ("zero_shot", "guided", "free"):
        assert 0 <= metrics[key]["top1"] <= metrics[key]["top5"] <= 1
    assert 0 < metrics["free"]["semantic_similarity"] <= 1
    assert {"load_s", "embed_s", "total_s", "images_per_s"} <= set(metrics["timings"])
    gap = metrics["modality_gap"]
    assert gap["matching_deg"]["n"] == 9 and gap["noise_deg"]["n"] == 200
    preds = json.loads((out / "toy.predictions.json").read_text())
    assert len(preds["samples"]) == 9 and preds["errors"] == metrics["unreadable_examples"]
    for s in preds["samples"]:
        assert s["class_prediction"] in ("cat", "sneaker")  # guided by the class nouns
        assert len(s["predictions"]) == 5 and {p["noun"] for p in s["predictions"]} <= set(NOUNS)
    # dustcart images can never be right; class-list accuracy counts them as wrong
    dust = [s for s in preds["samples"] if s["label"] == "dustcart"]
    assert len(dust) == 3
    assert (out / "toy.samples.png").stat().st_size > 1000


def test_class_list_accuracy_is_the_share_of_right_answers(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """Recount top-1 from the predictions JSON: the metric is what the predictions say."""
    folder = make_folder(tmp_path / "data")
    bench = BenchmarkSettings("toy", "folder", str(folder))
    settings = EvalSettings(semantic=False, batch_size=8)
    metrics = evaluate_images(
        files["model"], bench, settings, files["dictionary"], CPU,
        tmp_path / "m.json", tmp_path / "p.json",
    )  # fmt: skip
    samples = json.loads((tmp_path / "p.json").read_text())["samples"]
    right = [s["class_prediction"] == s["label"] for s in samples]
    assert metrics["guided"]["top1"] == pytest.approx(np.mean(right))
    assert "semantic_similarity" not in metrics["free"]


@pytest.mark.skipif(
    not Path(FASHION_MNIST_ROOT).is_dir(), reason="Debian's dataset-fashion-mnist is missing"
)
def test_fashion_mnist_subset(files: dict[str, Path], tmp_path: Path) -> None:
    bench = BenchmarkSettings(
        "fashion_mnist", "fashion_mnist", FASHION_MNIST_ROOT,
        classes=str(REPO / "resources/class_names/fashion_mnist.txt"), limit=40, seed=3,
        annotations=str(REPO / "resources/annotations/fashion_mnist.json"),
    )  # fmt: skip
    metrics = evaluate_images(
        files["model"], bench, EvalSettings(semantic=False, batch_size=16),
        files["dictionary"], CPU, tmp_path / "f.json", tmp_path / "f.predictions.json",
    )  # fmt: skip
    assert metrics["evaluated"] == 40 and metrics["classes"] == 10
    # every Fashion-MNIST class is a noun of the tiny model, through its variants
    assert metrics["guided"]["classes_unmapped"] == []
    assert metrics["zero_shot"]["chance"] == pytest.approx(0.1)
    # graded per class: every image scored, every predicted noun graded (other = incorrect)
    top5 = metrics["open_vocab"]["top5"]
    assert top5["images"] == 40 and top5["missing"] == {} and top5["shares"]["human"] == 1


def test_open_vocabulary_predictions_on_the_bundled_photos(
    files: dict[str, Path], tmp_path: Path
) -> None:
    photos = REPO / "resources/sample_images"
    bench = BenchmarkSettings(
        "photos", "images", str(photos), annotations=str(photos / "annotations.json"),
        specificity=str(photos / "specificity.json"),
    )  # fmt: skip
    metrics = evaluate_images(
        files["model"], bench, EvalSettings(batch_size=8), files["dictionary"], CPU,
        tmp_path / "o.json", tmp_path / "o.predictions.json",
    )  # fmt: skip
    assert "zero_shot" not in metrics and "guided" not in metrics
    ov = metrics["open_vocab"]
    assert ov["top1"]["images"] == 5
    assert 0 <= ov["top1"]["score"] <= ov["top5"]["score"] <= 1
    # who annotated the scored predictions: people or nobody here (no LLM in evaluation)
    assert sum(ov["top5"]["annotated_by"].values()) == 25 and ov["top5"]["shares"]["llm"] == 0
    preds = json.loads((tmp_path / "o.predictions.json").read_text())
    assert {s["id"] for s in preds["samples"]} == {p.name for p in photos.glob("*.jpg")}


def test_text_side_counts_exact_matches(files: dict[str, Path], tmp_path: Path) -> None:
    """Rows whose target is the decoder's own top-1 noun all count; other targets never do."""
    model, targets, _ = load_decoder(files["model"])
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((30, 64)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    top = [p[0].noun for p in NounDecoder(model, targets, "beam_k10_vnone_gp_t1_a0")(emb)]
    ids = {n: i for n, i in zip(targets.nouns, targets.noun_ids, strict=True)}
    own = np.zeros((30, 3), np.int32)
    own[:, 0] = [ids[n] for n in top]
    own[:15, 1] = ids["cat"]  # a second target (M2 rows) does not hurt
    never = np.zeros((30, 3), np.int32)
    never[:, 0] = [ids["coat"] if n != "coat" else ids["bag"] for n in top]
    for name, tgt in (("own", own), ("never", never)):
        table = embedding_table(emb, tgt, (tgt > 0).astype(np.float32), "float16")
        pq.write_table(table, tmp_path / f"{name}.parquet")
    out = evaluate_text(
        files["model"],
        {"own": tmp_path / "own.parquet", "never": tmp_path / "never.parquet"},
        EvalSettings(text_rows=30),
        CPU,
        tmp_path / "text.json",
    )
    assert out["sources"]["own"]["top1"] == 1.0 and out["sources"]["own"]["rows"] == 30
    assert out["sources"]["never"]["top1"] == 0.0
    assert json.loads((tmp_path / "text.json").read_text())["sources"]["own"]["top5"] == 1.0


def test_modality_gap_measures_the_angles() -> None:
    rng = np.random.default_rng(0)
    classes = np.linalg.qr(rng.standard_normal((16, 4)))[0].T  # 4 orthonormal class vectors
    labels = np.repeat(np.arange(4), 5)
    # each image is its class vector rotated by 60 degrees towards a perpendicular direction
    perp = np.roll(classes, 1, axis=0)[labels]
    images = np.cos(np.radians(60)) * classes[labels] + np.sin(np.radians(60)) * perp
    gap = modality_gap(images, labels, classes, {"scheme": "UniformAngle", "angle_min": 45,
                       "angle_max": 75}, samples=500, seed=0)  # fmt: skip
    assert gap["matching_deg"]["mean"] == pytest.approx(60, abs=1e-3)
    assert 45 <= gap["noise_deg"]["mean"] <= 75 and gap["noise_deg"]["n"] == 500
    assert sum(gap["histograms"]["matching"]) == 20
    assert gap["random_deg"]["mean"] > 60
