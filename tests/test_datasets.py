"""Datasets: every kind read from small data the tests write in each layout, a Fashion-MNIST
subset from Debian's IDX files, and clear errors for bad images and missing folders."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from novic import datasets
from novic.datasets import (
    FASHION_MNIST_ROOT,
    DatasetError,
    ImageError,
    open_dataset,
    open_image,
    read_idx,
    to_rgb,
)

REPO = Path(__file__).resolve().parent.parent


def write_image(path: Path, color: tuple[int, int, int], size: int = 12) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)


def test_image_folder_classes_labels_and_a_bad_file(tmp_path: Path) -> None:
    write_image(tmp_path / "red_apple" / "a.png", (255, 0, 0))
    write_image(tmp_path / "red_apple" / "b.jpg", (250, 0, 0))
    write_image(tmp_path / "banana" / "c.png", (255, 255, 0))
    (tmp_path / "banana" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "banana" / "notes.txt").write_text("ignored")
    ds = open_dataset("folder", tmp_path)
    assert ds.classes == [["banana"], ["red apple"]]
    assert [ds.id(i) for i in range(len(ds))] == [
        "banana/broken.png", "banana/c.png", "red_apple/a.png", "red_apple/b.jpg",
    ]  # fmt: skip
    assert [ds.label(i) for i in range(len(ds))] == [0, 0, 1, 1]
    assert ds.load(1).getpixel((0, 0)) == (255, 255, 0)
    with pytest.raises(ImageError, match=r"banana/broken\.png: cannot read image"):
        ds.load(0)


def test_plain_images_are_unlabelled(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png", (0, 0, 0))
    ds = open_dataset("images", tmp_path)
    assert len(ds) == 1 and ds.label(0) == -1 and ds.classes == []


def test_class_list_replaces_folder_names_and_must_match(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_image(tmp_path / "data" / name / "1.png", (1, 2, 3))
    good = tmp_path / "good.txt"
    good.write_text("apple, pomme\nbanana\n")
    ds = open_dataset("folder", tmp_path / "data", class_list=good)
    assert ds.classes == [["apple", "pomme"], ["banana"]]
    bad = tmp_path / "bad.txt"
    bad.write_text("apple\n")
    with pytest.raises(DatasetError, match="has 1 classes, the data 2"):
        open_dataset("folder", tmp_path / "data", class_list=bad)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files_in_torchvision_layout(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(raw / "t10k-images-idx3-ubyte.gz", images)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 3]))
    classes = REPO / "resources" / "class_names" / "fashion_mnist.txt"
    ds = open_dataset("fashion_mnist", tmp_path, "test", classes)
    assert len(ds) == 3 and [ds.label(i) for i in range(3)] == [9, 0, 3]
    assert ds.classes[0] == ["T-shirt", "top"] and ds.classes[9] == ["ankle boot"]
    assert np.asarray(ds.load(1))[0, 5].tolist() == [(28 * 28 + 5) % 256] * 3
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.*not found"):
        open_dataset("fashion_mnist", tmp_path, "train", classes)


def test_truncated_idx_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", 5, 28, 28) + b"\0" * 100)
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


@pytest.mark.skipif(
    not Path(FASHION_MNIST_ROOT).is_dir(), reason="Debian's dataset-fashion-mnist is missing"
)
def test_debian_fashion_mnist_subset() -> None:
    classes = REPO / "resources" / "class_names" / "fashion_mnist.txt"
    ds = open_dataset("fashion_mnist", FASHION_MNIST_ROOT, "test", classes).subset(50, seed=1)
    assert len(ds) == 50
    assert len({ds.label(i) for i in range(50)}) >= 8  # the subset spans the classes
    image = ds.load(0)
    assert image.size == (28, 28) and image.mode == "RGB"
    again = open_dataset("fashion_mnist", FASHION_MNIST_ROOT, "test", classes).subset(50, seed=1)
    assert [again.id(i) for i in range(50)] == [ds.id(i) for i in range(50)]


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def cifar_batch(n: int, labels_key: str, rng: np.random.Generator) -> dict:
    return {
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        labels_key: rng.integers(0, 3, n).tolist(),
    }


def test_cifar10_and_cifar100_in_torchvision_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    c10 = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_pickle(c10 / f"data_batch_{i}", cifar_batch(2, "labels", rng))
    test = cifar_batch(4, "labels", rng)
    write_pickle(c10 / "test_batch", test)
    write_pickle(c10 / "batches.meta", {"label_names": ["airplane", "automobile", "bird"]})
    ds = open_dataset("cifar10", tmp_path, "test")
    assert len(ds) == 4 and ds.classes == [["airplane"], ["automobile"], ["bird"]]
    first = np.asarray(ds.load(0))
    assert first.shape == (32, 32, 3)
    # channel-major rows: the red plane comes first
    assert first[0, 1, 0] == test["data"][0][1] and first[0, 0, 2] == test["data"][0][2048]
    assert len(open_dataset("cifar10", tmp_path, "train")) == 10

    c100 = tmp_path / "cifar-100-python"
    write_pickle(c100 / "test", cifar_batch(3, "fine_labels", rng))
    write_pickle(c100 / "meta", {"fine_label_names": ["apple", "aquarium_fish", "baby"]})
    ds = open_dataset("cifar100", tmp_path, "test")
    assert ds.classes[1] == ["aquarium fish"] and len(ds) == 3


def test_food101_and_imagenette_in_torchvision_layout(tmp_path: Path) -> None:
    food = tmp_path / "food-101"
    write_image(food / "images" / "apple_pie" / "1.jpg", (200, 100, 0))
    write_image(food / "images" / "sushi" / "2.jpg", (255, 255, 255))
    (food / "meta").mkdir()
    (food / "meta" / "test.json").write_text(
        json.dumps({"sushi": ["sushi/2"], "apple_pie": ["apple_pie/1"]})
    )
    ds = open_dataset("food101", tmp_path, "test")
    assert ds.classes == [["apple pie"], ["sushi"]]
    assert [(ds.id(i), ds.label(i)) for i in range(2)] == [
        ("images/apple_pie/1.jpg", 0), ("images/sushi/2.jpg", 1),
    ]  # fmt: skip

    from novic.datasets import IMAGENETTE_WNIDS

    for i, wnid in enumerate(IMAGENETTE_WNIDS):
        write_image(tmp_path / "imagenette2-160" / "val" / wnid / f"{i}.JPEG", (i, i, i))
    classes = REPO / "resources" / "class_names" / "imagenette.txt"
    ds = open_dataset("imagenette", tmp_path, "test", classes)
    assert len(ds) == 10 and ds.label(3) == 3 and ds.classes[3] == ["chain saw", "chainsaw"]


def test_missing_folders_and_unknown_kinds_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cifar-10-batches-py does not exist"):
        open_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset kind 'mnist'"):
        open_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError, match="split must be one of"):
        open_dataset("folder", tmp_path, split="val")


def gradient(dtype: type, top: float, width: int = 256) -> np.ndarray:
    """A horizontal ramp from 0 to `top`, 8 rows high."""
    return np.tile(np.linspace(0, top, width).astype(dtype), (8, 1))


@pytest.mark.parametrize(
    ("name", "values", "mode"),
    [
        ("g16.png", gradient(np.uint16, 65535), "I;16"),
        ("g16.tif", gradient(np.uint16, 65535), "I;16"),
        ("i32.tif", gradient(np.int32, 65535), "I"),
        ("f01.tif", gradient(np.float32, 1.0), "F"),
        ("f1000.tif", gradient(np.float32, 1000.0) - 500, "F"),  # outside 0..1: min to max
    ],
)
def test_high_bit_depth_images_are_scaled_not_clipped(
    tmp_path: Path, name: str, values: np.ndarray, mode: str
) -> None:
    path = tmp_path / name
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == mode
    rgb = np.asarray(open_image(path))
    assert rgb.shape == (8, 256, 3) and rgb.dtype == np.uint8
    assert (rgb == rgb[..., :1]).all()  # grey
    assert np.abs(rgb[0, :, 0].astype(int) - np.arange(256)).max() <= 1  # the full 0..255 ramp
    assert (rgb == 255).all(-1).mean() < 0.01  # the old code: 99.6% white


def test_large_images_are_shrunk_as_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = {(3000, 1000): (2304, 768), (1000, 10000): (307, 3072), (500, 400): (500, 400)}
    for (w, h), want in sizes.items():
        for suffix in (".jpg", ".png"):
            path = tmp_path / f"{w}x{h}{suffix}"
            Image.new("RGB", (w, h), (10, 200, 30)).save(path)
            image = open_image(path)
            assert image.size == want and image.mode == "RGB"
            assert open_image(path, side=0).size == (w, h)
            assert np.abs(np.asarray(image).astype(int) - [10, 200, 30]).max() <= 3
    # the sample grid and classify get thumbnails of opened images too
    assert to_rgb(Image.new("P", (4000, 1000))).size == (3072, 768)
    monkeypatch.setattr(datasets, "MAX_PIXELS", 1000 * 1000)
    with pytest.raises(ImageError, match=r"3000x1000\.png: .*3000x1000 pixels is more than"):
        open_image(tmp_path / "3000x1000.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    errors: list[str] = []

    def read() -> None:
        try:
            open_image(fifo)
        except ImageError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():  # the old code waited for a writer forever: release it, then fail
        with open(fifo, "wb"):
            pass
        pytest.fail(f"open_image({fifo}) hung")
    assert errors == [f"{fifo}: cannot read image: a FIFO, not a regular file"]
    with pytest.raises(ImageError, match="a folder, not a regular file"):
        open_image(tmp_path)
    with pytest.raises(ImageError, match=r"null: cannot read image: a special file"):
        open_image("/dev/null")


# --- the paper's ImageNet-family benchmarks ------------------------------------------------------

CLASS_NAMES = REPO / "resources" / "class_names"
WNIDS = datasets.read_wnids(CLASS_NAMES / "imagenet1k_wnids.txt")


def test_imagenet_wnids_and_class_lists_are_consistent() -> None:
    from novic.classlists import read_class_list

    assert len(WNIDS) == 1000 and sorted(WNIDS) == WNIDS
    assert WNIDS[0] == "n01440764" and WNIDS[-1] == "n15075141"
    wnids, names = datasets.imagenet_names()
    assert wnids == WNIDS and names["n01440764"] == ["tench"]
    for kind, count in (("imagenet_a", 200), ("imagenet_r", 200), ("imagewoof", 10)):
        path = CLASS_NAMES / f"{kind}.txt"
        declared = datasets.listed_wnids(path)
        assert declared is not None and len(declared) == count and declared == sorted(declared)
        assert read_class_list(path) == [names[w] for w in declared]
    assert datasets.listed_wnids(CLASS_NAMES / "imagewoof.txt") == list(datasets.IMAGEWOOF_WNIDS)
    assert datasets.listed_wnids(CLASS_NAMES / "imagenet1k.txt") is None  # no wnid comments


def test_imagenet_class_lists_match_their_generator() -> None:
    pytest.importorskip("timm")
    pytest.importorskip("open_clip")
    import subprocess
    import sys

    tool = REPO / "tools" / "imagenet_class_lists.py"
    result = subprocess.run([sys.executable, tool, "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def samples(ds: datasets.ImageDataset) -> list[tuple[str, int]]:
    return [(ds.id(i), ds.label(i)) for i in range(len(ds))]


def test_imagenet1k_class_folders(tmp_path: Path) -> None:
    for j, wnid in enumerate((WNIDS[0], WNIDS[1], WNIDS[999])):
        write_image(tmp_path / "val" / wnid / f"ILSVRC2012_val_{j}.JPEG", (j, 0, 0))
    write_image(tmp_path / "train" / WNIDS[5] / "t.JPEG", (0, 0, 0))
    ds = open_dataset("imagenet1k", tmp_path)  # class names from resources/ by default
    assert samples(ds) == [
        (f"val/{WNIDS[0]}/ILSVRC2012_val_0.JPEG", 0),
        (f"val/{WNIDS[1]}/ILSVRC2012_val_1.JPEG", 1),
        (f"val/{WNIDS[999]}/ILSVRC2012_val_2.JPEG", 999),
    ]
    assert len(ds.classes) == 1000 and ds.classes[0] == ["tench"] and ds.wnids == WNIDS
    datasets.check_labels(ds)
    listed = open_dataset("imagenet1k", tmp_path, class_list=CLASS_NAMES / "imagenet1k.txt")
    assert listed.classes == ds.classes
    assert len(ds.subset(2, seed=3)) == 2
    assert samples(open_dataset("imagenet1k", tmp_path, "train")) == [
        (f"train/{WNIDS[5]}/t.JPEG", 5)
    ]
    (tmp_path / "val" / "n99999999").mkdir()
    with pytest.raises(DatasetError, match=r"val/n99999999 is not named by an ImageNet-1K wnid"):
        open_dataset("imagenet1k", tmp_path)


def test_imagenet1k_kaggle_layout_with_its_solution_csv(tmp_path: Path) -> None:
    val = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    for j in (1, 2):
        write_image(val / f"ILSVRC2012_val_0000000{j}.JPEG", (j, j, j))
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text(
        "ImageId,PredictionString\n"
        f"ILSVRC2012_val_00000002,{WNIDS[7]} 1 2 3 4 {WNIDS[7]} 5 6 7 8\n"
        f"ILSVRC2012_val_00000001,{WNIDS[3]} 1 2 3 4\n\n"
    )
    ds = open_dataset("imagenet1k", tmp_path, "test")
    assert samples(ds) == [
        ("val/ILSVRC2012_val_00000001.JPEG", 3), ("val/ILSVRC2012_val_00000002.JPEG", 7),
    ]  # fmt: skip
    assert ds.load(1).getpixel((0, 0)) == (2, 2, 2)
    csv.write_text(f"ImageId,PredictionString\nILSVRC2012_val_00000001,{WNIDS[3]} 1 2 3 4\n")
    with pytest.raises(DatasetError, match=r"1 images of .* have no row in .*LOC_val_solution"):
        open_dataset("imagenet1k", tmp_path)
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,cat 1 2 3 4\n")
    with pytest.raises(DatasetError, match=r"LOC_val_solution\.csv:2: expected an image id"):
        open_dataset("imagenet1k", tmp_path)


def test_imagenet_metadata_is_found_or_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not in the working directory: the repository's copy
    assert datasets.resource(datasets.WNID_FILE) == REPO / datasets.WNID_FILE
    monkeypatch.setattr(datasets, "WNID_FILE", "resources/class_names/gone.txt")
    with pytest.raises(DatasetError, match=r"class_names/gone\.txt does not exist"):
        datasets.imagenet_names()
    bad = tmp_path / "wnids.txt"
    bad.write_text("n01440764\nn01440764\n")
    with pytest.raises(DatasetError, match=r"wnids\.txt:2: n01440764 is listed twice"):
        datasets.read_wnids(bad)
    bad.write_text("# header\ntench\n")
    with pytest.raises(DatasetError, match=r"wnids\.txt:2: 'tench' is not a WordNet id"):
        datasets.read_wnids(bad)


def test_imagenet1k_flat_files_named_by_wnid_or_unlabelled(tmp_path: Path) -> None:
    write_image(tmp_path / "val" / f"ILSVRC2012_val_00000001_{WNIDS[2]}.JPEG", (0, 0, 0))
    write_image(tmp_path / "val" / f"ILSVRC2012_val_00000002_{WNIDS[0]}.JPEG", (0, 0, 0))
    ds = open_dataset("imagenet1k", tmp_path)
    assert [ds.label(i) for i in range(2)] == [2, 0]
    write_image(tmp_path / "val" / "ILSVRC2012_val_00000003.JPEG", (0, 0, 0))
    (tmp_path / "ILSVRC2012_validation_ground_truth.txt").write_text("65\n970\n230\n")
    with pytest.raises(DatasetError, match=r"holds 3 images but no labels: .*valprep\.sh"):
        open_dataset("imagenet1k", tmp_path)
    with pytest.raises(DatasetError, match=r"imagenet1k: no folder val/ in .*empty"):
        open_dataset("imagenet1k", tmp_path / "empty")


def imagenet_variant_tree(root: Path, wnids: list[str]) -> None:
    for wnid in wnids:
        (root / wnid).mkdir(parents=True)
    write_image(root / wnids[0] / "0.jpg", (0, 0, 0))
    write_image(root / wnids[199] / "a.jpg", (9, 9, 9))
    write_image(root / wnids[199] / "b.png", (9, 9, 9))


@pytest.mark.parametrize("kind", ["imagenet_a", "imagenet_r"])
def test_imagenet_a_and_r_release_folders(tmp_path: Path, kind: str) -> None:
    wnids = datasets.listed_wnids(CLASS_NAMES / f"{kind}.txt")
    assert wnids is not None
    imagenet_variant_tree(tmp_path / kind.replace("_", "-"), wnids)
    classes = CLASS_NAMES / f"{kind}.txt"
    ds = open_dataset(kind, tmp_path, class_list=classes)
    assert samples(ds) == [
        (f"{wnids[0]}/0.jpg", 0), (f"{wnids[199]}/a.jpg", 199), (f"{wnids[199]}/b.png", 199),
    ]  # fmt: skip
    _, names = datasets.imagenet_names()
    assert ds.classes[199] == names[wnids[199]] and ds.wnids == wnids
    assert open_dataset(kind, tmp_path).classes == ds.classes  # names from ImageNet-1K
    assert len(ds.subset(1)) == 1
    other = "imagenet_r" if kind == "imagenet_a" else "imagenet_a"
    with pytest.raises(DatasetError, match=rf"class list .*{other}\.txt is for other classes"):
        open_dataset(kind, tmp_path, class_list=CLASS_NAMES / f"{other}.txt")
    with pytest.raises(DatasetError, match="has only a test split"):
        open_dataset(kind, tmp_path, "train")
    (tmp_path / kind.replace("_", "-") / wnids[5]).rmdir()
    with pytest.raises(DatasetError, match=r"has 199 class folders, expected the release's 200"):
        open_dataset(kind, tmp_path)
    (tmp_path / kind.replace("_", "-") / "README.d").mkdir()
    with pytest.raises(DatasetError, match=r"not named by ImageNet-1K wnids .*README\.d"):
        open_dataset(kind, tmp_path)


def write_tiny_imagenet(base: Path) -> None:
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("n02124075\nn01443537\n")  # not sorted, as released
    (base / "words.txt").write_text(
        "n00001740\tentity\nn01443537\tgoldfish, Carassius auratus\nn02124075\tEgyptian cat\n"
    )
    write_image(base / "val" / "images" / "val_0.JPEG", (1, 1, 1))
    write_image(base / "val" / "images" / "val_1.JPEG", (2, 2, 2))
    (base / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn02124075\t0\t1\t60\t60\nval_1.JPEG\tn01443537\t3\t4\t50\t50\n"
    )
    write_image(base / "train" / "n01443537" / "images" / "n01443537_0.JPEG", (3, 3, 3))
    (base / "train" / "n02124075" / "images").mkdir(parents=True)


def test_tiny_imagenet_official_layout(tmp_path: Path) -> None:
    write_tiny_imagenet(tmp_path / "tiny-imagenet-200")
    ds = open_dataset("tinyimagenet", tmp_path)
    assert ds.classes == [["goldfish", "Carassius auratus"], ["Egyptian cat"]]
    assert samples(ds) == [("val/images/val_0.JPEG", 1), ("val/images/val_1.JPEG", 0)]
    assert ds.wnids == ["n01443537", "n02124075"]
    assert ds.load(1).getpixel((0, 0)) == (2, 2, 2)
    assert len(ds.subset(1, seed=2)) == 1
    train = open_dataset("tinyimagenet", tmp_path / "tiny-imagenet-200", "train")
    assert samples(train) == [("train/n01443537/images/n01443537_0.JPEG", 0)]


def test_tiny_imagenet_bad_files_are_named(tmp_path: Path) -> None:
    base = tmp_path / "tiny-imagenet-200"
    write_tiny_imagenet(base)
    annotations = base / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn09999999\t0\t1\t60\t60\n")
    with pytest.raises(DatasetError, match=r"val_annotations\.txt:1: expected FILE<tab>WNID"):
        open_dataset("tinyimagenet", tmp_path)
    annotations.write_text("val_7.JPEG\tn01443537\n")
    with pytest.raises(DatasetError, match=r"val_annotations\.txt:1: .*val_7\.JPEG does not"):
        open_dataset("tinyimagenet", tmp_path)
    (base / "words.txt").write_text("n01443537\tgoldfish\n")
    with pytest.raises(DatasetError, match=r"words\.txt names no class for \['n02124075'\]"):
        open_dataset("tinyimagenet", tmp_path)
    (base / "words.txt").unlink()
    with pytest.raises(DatasetError, match=r"cannot read .*words\.txt"):
        open_dataset("tinyimagenet", tmp_path)
    with pytest.raises(DatasetError, match=r"cannot read .*wnids\.txt"):
        open_dataset("tinyimagenet", tmp_path / "nothing")


def test_imagewoof_fastai_layout(tmp_path: Path) -> None:
    for i, wnid in enumerate(datasets.IMAGEWOOF_WNIDS):
        write_image(tmp_path / "imagewoof2-320" / "val" / wnid / f"{i}.JPEG", (i, i, i))
    classes = CLASS_NAMES / "imagewoof.txt"
    ds = open_dataset("imagewoof", tmp_path, "test", classes)
    assert len(ds) == 10 and ds.label(8) == 8 and ds.classes[8] == ["Samoyed"]
    assert ds.classes[0] == ["Shih Tzu"] and ds.id(9) == "val/n02115641/9.JPEG"
    small = ds.subset(3, seed=1)
    assert len(small) == 3 and small.wnids == list(datasets.IMAGEWOOF_WNIDS)
    assert [small.label(i) for i in range(3)] == sorted(small.label(i) for i in range(3))
    with pytest.raises(DatasetError, match="imagewoof: needs a class list"):
        open_dataset("imagewoof", tmp_path)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("".join(f"dog {i}  # {w}\n" for i, w in enumerate(WNIDS[:10])))
    with pytest.raises(DatasetError, match=r"is for other classes: its class 0 is n01440764"):
        open_dataset("imagewoof", tmp_path, "test", wrong)
    with pytest.raises(DatasetError, match=r"none of imagewoof2, .*missing \(expected ROOT/"):
        open_dataset("imagewoof", tmp_path / "missing", "test", classes)
