"""Image datasets for evaluation, read from local files only (nothing is downloaded).

Kinds (`kind` in a benchmark's config) and the layout each expects under its ROOT: LAYOUTS.

`split` is train or test (the val splits of ImageNet-1K, Tiny ImageNet, Imagenette and
Imagewoof and Food-101's test are "test"; ImageNet-A and -R have only test). Class names come
from the dataset itself (CIFAR's meta, folder names, Tiny ImageNet's words.txt) unless a
class-list file is given (one class per line in class-index order, synonyms separated by commas;
resources/class_names/). ImageNet kinds label classes by WordNet id (wnid) in sorted order;
their wnids come from the data and from resources/class_names/imagenet1k_wnids.txt (WNID_FILE),
and a class list whose lines end in `# wnid` comments is checked against them.
`limit` keeps a seeded random subset of that many samples (stratified by nothing: uniform).

A dataset is a list of samples; `load(i)` opens one as an RGB PIL image and raises ImageError
naming the file (or the index) when it cannot be read, so callers can report it and go on.
"""

from __future__ import annotations

import gzip
import json
import pickle
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from novic.classlists import read_class_list

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
KINDS = (
    "folder",
    "images",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "food101",
    "imagenette",
    "imagewoof",
    "imagenet1k",
    "imagenet_a",
    "imagenet_r",
    "tinyimagenet",
)
SPLITS = ("train", "test")
LAYOUTS = {
    "folder": "ROOT/{class}/*.jpg|png|...: one sub-folder per class (sorted names are the class "
    "order, underscores read as spaces), like torchvision's ImageFolder",
    "images": "ROOT/*.jpg|png|...: unlabelled images (open-vocabulary predictions)",
    "fashion_mnist": "the IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in ROOT or "
    "ROOT/FashionMNIST/raw (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist)",
    "cifar10": "ROOT/cifar-10-batches-py/ (torchvision's layout of the python pickles)",
    "cifar100": "ROOT/cifar-100-python/ (torchvision's layout of the python pickles)",
    "food101": "ROOT/food-101/{images,meta}/ (meta/{train,test}.json; torchvision's layout)",
    "imagenette": "ROOT/imagenette2[-320|-160]/{train,val}/{wnid}/*.JPEG (the extracted tarball)",
    "imagewoof": "ROOT/imagewoof2[-320|-160]/{train,val}/{wnid}/*.JPEG (fast.ai's tarball)",
    "imagenet1k": "ILSVRC2012 in ROOT or ROOT/ILSVRC/Data/CLS-LOC: val/{wnid}/*.JPEG (sorted into "
    "class folders, as by valprep.sh), or val/*.JPEG with ROOT/LOC_val_solution.csv (Kaggle), "
    "or val/*_{wnid}.JPEG (Hugging Face's archive); train/{wnid}/*.JPEG",
    "imagenet_a": "ROOT[/imagenet-a]/{wnid}/*.jpg: the release's 200 class folders",
    "imagenet_r": "ROOT[/imagenet-r]/{wnid}/*.jpg: the release's 200 class folders",
    "tinyimagenet": "ROOT[/tiny-imagenet-200]/ with wnids.txt, words.txt, val/images/*.JPEG and "
    "val/val_annotations.txt (the official zip); train/{wnid}/images/*.JPEG",
}
# ImageNet metadata the ImageNet kinds read (paths relative to the working directory, else to
# the repository; both are rule inputs of evaluate_benchmark): the 1000 wnids in class-index
# order and their names (tools/imagenet_class_lists.py writes the wnid file).
WNID_FILE = "resources/class_names/imagenet1k_wnids.txt"
IMAGENET_NAMES_FILE = "resources/class_names/imagenet1k.txt"
KIND_FILES: dict[str, tuple[str, ...]] = {
    "imagenet1k": (WNID_FILE, IMAGENET_NAMES_FILE),
    "imagenet_a": (WNID_FILE, IMAGENET_NAMES_FILE),
    "imagenet_r": (WNID_FILE, IMAGENET_NAMES_FILE),
}
WNID = re.compile(r"n[0-9]{8}")
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
IMAGENETTE_WNIDS = (
    "n01440764",
    "n02102040",
    "n02979186",
    "n03000684",
    "n03028079",
    "n03394916",
    "n03417042",
    "n03425413",
    "n03445777",
    "n03888605",
)
IMAGEWOOF_WNIDS = (
    "n02086240",
    "n02087394",
    "n02088364",
    "n02089973",
    "n02093754",
    "n02096294",
    "n02099601",
    "n02105641",
    "n02111889",
    "n02115641",
)


class DatasetError(ValueError):
    """A dataset that cannot be found or read; the message names the path and what to do."""


class ImageError(OSError):
    """One sample that cannot be read as an image."""


@dataclass
class ImageDataset:
    """Samples with integer labels (-1 = unlabelled) and the class names (synonym rows)."""

    name: str
    classes: list[list[str]]
    ids: list[str]  # a readable id per sample: a relative path, or "test/123"
    labels: list[int]
    loader: Callable[[int], Any]  # index into the full sample list -> PIL image
    indices: list[int] = field(default_factory=list)
    wnids: list[str] = field(default_factory=list)  # the classes' WordNet ids, if known

    def __post_init__(self) -> None:
        if not self.indices:
            self.indices = list(range(len(self.ids)))

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, i: int) -> Any:
        """Sample i as an RGB PIL image (ImageError if it cannot be read)."""
        j = self.indices[i]
        try:
            image = self.loader(j)
            return image.convert("RGB")
        except ImageError:
            raise
        except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, ...)
            raise ImageError(f"{self.ids[j]}: cannot read image: {exc}") from exc

    def id(self, i: int) -> str:
        return self.ids[self.indices[i]]

    def label(self, i: int) -> int:
        return self.labels[self.indices[i]]

    def subset(self, limit: int, seed: int = 0) -> ImageDataset:
        """A seeded random subset of at most `limit` samples (0 = all), in sample order."""
        if limit <= 0 or limit >= len(self.indices):
            return self
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(len(self.indices), size=limit, replace=False).tolist())
        return ImageDataset(
            self.name,
            self.classes,
            self.ids,
            self.labels,
            self.loader,
            [self.indices[i] for i in keep],
            self.wnids,
        )


# Images are shrunk as they are read: their shorter side to at most READ_SIDE px (2 x 384, the
# largest CLIP input; CLIP resizes the shorter side, then crops the centre) and their longer
# side to at most 4 x READ_SIDE. Larger files than MAX_PIXELS are refused before decoding.
READ_SIDE = 768
MAX_PIXELS = 150_000_000
# 16-bit, 32-bit and float modes: the value range mapped onto 0..255 ("I" holds 16-bit PNG and
# TIFF data; an "I" or "F" image with values outside its range is stretched from min to max)
HIGH_DEPTH_RANGES: dict[str, tuple[float, float]] = {
    "I;16": (0, 65535),
    "I;16L": (0, 65535),
    "I;16B": (0, 65535),
    "I;16N": (0, 65535),
    "I": (0, 65535),
    "F": (0, 1),
}


def _read_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The size an image of `size` is shrunk to (READ_SIDE rules above; never enlarged)."""
    w, h = size
    if min(w, h) < 1:
        return size
    scale = min(1.0, side / min(w, h), 4 * side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def to_rgb(image: Any, side: int = READ_SIDE) -> Any:
    """A PIL image as a new 8-bit RGB image, shrunk by the READ_SIDE rules (side 0: full size).

    16-bit and float images are scaled from their mode's range (HIGH_DEPTH_RANGES), not clipped.
    """
    from PIL import Image

    target = _read_size(image.size, side) if side else image.size
    value_range = None
    if image.mode in HIGH_DEPTH_RANGES:
        lo_fixed, hi_fixed = HIGH_DEPTH_RANGES[image.mode]
        image = image.convert("F") if image.mode != "F" else image
        lo, hi = image.getextrema()
        inside = lo_fixed <= lo and hi <= hi_fixed
        value_range = (lo_fixed, hi_fixed) if inside else (lo, max(hi, lo + 1))
    elif image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # palette, alpha, CMYK, ...: resized as RGB
    if target != image.size:
        image = image.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if value_range is not None:
        lo, hi = value_range
        values = (np.asarray(image, dtype=np.float32) - lo) * (255 / (hi - lo))
        image = Image.fromarray(np.clip(values + 0.5, 0, 255).astype(np.uint8))
    return image.convert("RGB")  # a new image even when it is RGB already


def _open_regular(path: str | Path) -> Any:
    """A binary file object, for regular files only (a FIFO or a device would block or never
    end): opened without blocking, then checked."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "special file"
            if stat.S_ISDIR(mode):
                kind = "folder"
            elif stat.S_ISFIFO(mode):
                kind = "FIFO"
            raise ImageError(f"{path}: cannot read image: a {kind}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_image(path: str | Path, side: int = READ_SIDE) -> Any:
    """Open an image file (regular files only) as 8-bit RGB, shrunk as it is read (`to_rgb`);
    ImageError naming the file if it cannot be read or has more than MAX_PIXELS pixels."""
    import warnings

    from PIL import Image

    try:
        with _open_regular(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS rules
            with Image.open(f) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: cannot read image: {w}x{h} pixels is more than "
                        f"novic.datasets.MAX_PIXELS ({MAX_PIXELS:,})"
                    )
                if side:  # JPEG: decode at 1/2, 1/4 or 1/8 scale if that still covers it
                    im.draft("RGB", _read_size(im.size, side))
                return to_rgb(im, side)
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, ...)
        raise ImageError(f"{path}: cannot read image: {exc}") from exc


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _need_dir(path: Path, kind: str, hint: str = "") -> Path:
    if not path.is_dir():
        raise DatasetError(f"{kind}: folder {path} does not exist{'; ' + hint if hint else ''}")
    return path


def _name(folder: str) -> str:
    return folder.replace("_", " ")


def _files_dataset(
    name: str, root: Path, classes: list[list[str]], files: list[tuple[Path, int]]
) -> ImageDataset:
    paths = [p for p, _ in files]
    return ImageDataset(
        name,
        classes,
        [str(p.relative_to(root)) for p in paths],
        [label for _, label in files],
        lambda i: open_image(paths[i]),
    )


def image_folder(root: str | Path, name: str = "folder") -> ImageDataset:
    """ROOT/{class}/image files; classes in sorted folder order."""
    root = _need_dir(Path(root), name)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DatasetError(f"{name}: {root} has no class sub-folders")
    files = [(f, label) for label, d in enumerate(folders) for f in _image_files(d)]
    if not files:
        raise DatasetError(f"{name}: no image files under {root}/*/")
    return _files_dataset(name, root, [[_name(d.name)] for d in folders], files)


def plain_images(root: str | Path, name: str = "images") -> ImageDataset:
    """ROOT/image files, unlabelled."""
    root = _need_dir(Path(root), name)
    files = [(f, -1) for f in _image_files(root)]
    if not files:
        raise DatasetError(f"{name}: no image files in {root}")
    return _files_dataset(name, root, [], files)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX array (MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read IDX file: {exc}") from exc
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: {body.size} values for shape {shape} (truncated file?)")
    return body.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path:
    for folder in (root, root / "FashionMNIST" / "raw"):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(
        f"fashion_mnist: {stem}[.gz] not found in {root} or {root}/FashionMNIST/raw "
        "(Debian: apt-get install dataset-fashion-mnist, root /usr/share/datasets/fashion-mnist)"
    )


def fashion_mnist(root: str | Path, split: str, classes: list[list[str]]) -> ImageDataset:
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DatasetError(f"fashion_mnist: {root}: {images.shape} images, {labels.shape} labels")
    return _array_dataset("fashion_mnist", split, images, labels, classes)


def _array_dataset(
    name: str, split: str, images: np.ndarray, labels: np.ndarray, classes: list[list[str]]
) -> ImageDataset:
    from PIL import Image

    return ImageDataset(
        name,
        classes,
        [f"{split}/{i}" for i in range(len(labels))],
        [int(x) for x in labels],
        lambda i: Image.fromarray(images[i]),
    )


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read CIFAR batch: {exc}") from exc


def cifar(root: str | Path, split: str, fine: bool) -> ImageDataset:
    """CIFAR-10 (fine=False) or CIFAR-100 (fine labels) in torchvision's layout."""
    name = "cifar100" if fine else "cifar10"
    folder = Path(root) / ("cifar-100-python" if fine else "cifar-10-batches-py")
    _need_dir(folder, name, "expected torchvision's layout (the extracted python tarball)")
    if fine:
        batches = ["train"] if split == "train" else ["test"]
        meta, key, names = folder / "meta", "fine_labels", "fine_label_names"
    else:
        batches = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, key, names = folder / "batches.meta", "labels", "label_names"
    data, labels = [], []
    for batch in batches:
        d = _unpickle(folder / batch)
        data.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(d[key])
    images = np.concatenate(data).transpose(0, 2, 3, 1)
    classes = [[_name(n)] for n in _unpickle(meta)[names]]
    return _array_dataset(name, split, images, np.asarray(labels), classes)


def food101(root: str | Path, split: str) -> ImageDataset:
    base = _need_dir(Path(root) / "food-101", "food101", "expected torchvision's layout")
    meta = base / "meta" / f"{split}.json"
    try:
        listing = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"food101: cannot read {meta}: {exc}") from exc
    names = sorted(listing)
    files = [
        (base / "images" / f"{item}.jpg", label)
        for label, cls in enumerate(names)
        for item in listing[cls]
    ]
    return _files_dataset("food101", base, [[_name(n)] for n in names], files)


def fastai_imagenet(
    root: str | Path, split: str, classes: list[list[str]], name: str, wnids: Sequence[str]
) -> ImageDataset:
    """Imagenette or Imagewoof: fast.ai's tarball, {train,val}/{wnid}/ for its 10 wnids."""
    root = Path(root)
    stem = "imagenette2" if name == "imagenette" else "imagewoof2"
    candidates = [root / v for v in (stem, f"{stem}-320", f"{stem}-160")]
    base = next((c for c in candidates if c.is_dir()), None)
    if base is None:
        raise DatasetError(
            f"{name}: none of {', '.join(c.name for c in candidates)} in {root} "
            f"(expected {LAYOUTS[name]})"
        )
    folder = base / ("train" if split == "train" else "val")
    files = []
    for label, wnid in enumerate(wnids):
        d = _need_dir(folder / wnid, name)
        files.extend((f, label) for f in _image_files(d))
    ds = _files_dataset(name, base, classes, files)
    ds.wnids = list(wnids)
    return ds


def imagenette(root: str | Path, split: str, classes: list[list[str]]) -> ImageDataset:
    return fastai_imagenet(root, split, classes, "imagenette", IMAGENETTE_WNIDS)


def resource(path: str | Path) -> Path:
    """A metadata file of the project (KIND_FILES): relative to the working directory (a
    Snakemake workdir), else to the repository this package sits in."""
    path = Path(path)
    for candidate in (path, Path(__file__).resolve().parent.parent / path):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"{path} does not exist in the working directory or the repository (a metadata file "
        "of the project: restore it from git; tools/imagenet_class_lists.py writes the wnid list)"
    )


def read_wnids(path: str | Path) -> list[str]:
    """WordNet ids, one a line (# comments and blank lines skipped); DatasetError naming the
    file and line for anything else or for a duplicate."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read wnid list: {exc}") from exc
    wnids: list[str] = []
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if not WNID.fullmatch(text):
            raise DatasetError(f"{path}:{number}: {text!r} is not a WordNet id (n + 8 digits)")
        if text in wnids:
            raise DatasetError(f"{path}:{number}: {text} is listed twice")
        wnids.append(text)
    return wnids


def listed_wnids(path: str | Path) -> list[str] | None:
    """The wnids of a class list whose every class line ends in a `# wnid` comment (the lists
    tools/imagenet_class_lists.py writes), else None."""
    wnids = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        text, _, comment = raw.partition("#")
        if text.strip():
            if not WNID.fullmatch(comment.strip()):
                return None
            wnids.append(comment.strip())
    return wnids


def imagenet_names() -> tuple[list[str], dict[str, list[str]]]:
    """The 1000 ImageNet-1K wnids in class-index order, and wnid -> class-name row."""
    wnids = read_wnids(resource(WNID_FILE))
    names_file = resource(IMAGENET_NAMES_FILE)
    rows = read_class_list(names_file)
    if len(wnids) != 1000 or wnids != sorted(wnids) or len(rows) != 1000:
        raise DatasetError(
            f"{WNID_FILE} ({len(wnids)} wnids) and {IMAGENET_NAMES_FILE} ({len(rows)} classes) "
            "must list the 1000 ImageNet-1K classes in sorted-wnid order"
        )
    return wnids, dict(zip(wnids, rows, strict=True))


def _read_loc_solution(path: Path, known: set[str]) -> dict[str, str]:
    """Kaggle's LOC_val_solution.csv: ImageId,PredictionString (whose first word is the wnid)."""
    import csv

    out: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    if not rows or [c.strip() for c in rows[0][:2]] != ["ImageId", "PredictionString"]:
        raise DatasetError(f"{path}:1: expected the header ImageId,PredictionString (Kaggle's)")
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        words = row[1].split() if len(row) >= 2 else []
        if not row or not words or words[0] not in known:
            raise DatasetError(
                f"{path}:{number}: expected an image id and an ImageNet-1K wnid, got {row!r}"
            )
        out[row[0].strip()] = words[0]
    return out


def imagenet1k(root: str | Path, split: str, classes: list[list[str]] | None) -> ImageDataset:
    """ILSVRC2012 (LAYOUTS["imagenet1k"]); labels index the 1000 sorted wnids."""
    root = Path(root)
    wnids, names = imagenet_names()
    index = {w: i for i, w in enumerate(wnids)}
    sub = "train" if split == "train" else "val"
    bases = [root, root / "ILSVRC" / "Data" / "CLS-LOC"]
    base = next((b for b in bases if (b / sub).is_dir()), None)
    if base is None:
        raise DatasetError(
            f"imagenet1k: no folder {sub}/ in {root} or {bases[1]} "
            f"(expected {LAYOUTS['imagenet1k']})"
        )
    folder = base / sub
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    files: list[tuple[Path, int]] = []
    if subdirs:
        for d in subdirs:
            if d.name not in index:
                raise DatasetError(
                    f"imagenet1k: folder {d} is not named by an ImageNet-1K wnid ({WNID_FILE})"
                )
            files.extend((f, index[d.name]) for f in _image_files(d))
    else:
        images = _image_files(folder)
        solution = next(
            (p for p in (root / "LOC_val_solution.csv", base / "LOC_val_solution.csv")
             if p.is_file()),
            None,
        )  # fmt: skip
        suffixed = [re.search(r"_(n[0-9]{8})$", f.stem) for f in images]
        if solution is not None:
            truth = _read_loc_solution(solution, set(index))
            unlisted = [f.name for f in images if f.stem not in truth]
            if unlisted:
                raise DatasetError(
                    f"imagenet1k: {len(unlisted)} images of {folder} have no row in {solution}, "
                    f"e.g. {unlisted[:3]}"
                )
            files = [(f, index[truth[f.stem]]) for f in images]
        elif images and all(m and m.group(1) in index for m in suffixed):
            files = [(f, index[m.group(1)]) for f, m in zip(images, suffixed, strict=True) if m]
        elif images:
            hint = ""
            if (root / "ILSVRC2012_validation_ground_truth.txt").is_file():
                hint = (
                    "; ILSVRC2012_validation_ground_truth.txt numbers the classes in the "
                    "devkit's order, which is not read: sort the images into val/{wnid}/ "
                    "folders (valprep.sh) instead"
                )
            raise DatasetError(
                f"imagenet1k: {folder} holds {len(images)} images but no labels: expected "
                f"{root}/LOC_val_solution.csv (Kaggle), file names ending in _{{wnid}} or "
                f"val/{{wnid}}/ folders{hint}"
            )
    if not files:
        raise DatasetError(f"imagenet1k: no image files in {folder} or its class folders")
    ds = _files_dataset("imagenet1k", base, classes or [names[w] for w in wnids], files)
    ds.wnids = wnids
    return ds


def imagenet_variant(
    root: str | Path, split: str, classes: list[list[str]] | None, name: str
) -> ImageDataset:
    """ImageNet-A or ImageNet-R: 200 wnid folders; labels index the sorted folders, the class
    names are those of ImageNet-1K."""
    if split != "test":
        raise DatasetError(f"{name}: has only a test split, got split {split!r}")
    root = Path(root)
    nested = root / name.replace("_", "-")
    base = _need_dir(nested if nested.is_dir() else root, name, f"expected {LAYOUTS[name]}")
    folders = sorted(p for p in base.iterdir() if p.is_dir())
    _, names = imagenet_names()
    unknown = [d.name for d in folders if d.name not in names]
    if unknown:
        raise DatasetError(
            f"{name}: folders of {base} not named by ImageNet-1K wnids ({WNID_FILE}): {unknown[:5]}"
        )
    if len(folders) != 200:
        raise DatasetError(
            f"{name}: {base} has {len(folders)} class folders, expected the release's 200 "
            f"({LAYOUTS[name]})"
        )
    files = [(f, label) for label, d in enumerate(folders) for f in _image_files(d)]
    if not files:
        raise DatasetError(f"{name}: no image files under {base}/*/")
    ds = _files_dataset(name, base, classes or [names[d.name] for d in folders], files)
    ds.wnids = [d.name for d in folders]
    return ds


def _read_lines(path: Path, name: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{name}: cannot read {path}: {exc} (expected {LAYOUTS[name]})") from exc


def tinyimagenet(root: str | Path, split: str) -> ImageDataset:
    """Tiny ImageNet's official zip; labels index the 200 sorted wnids of wnids.txt, names come
    from words.txt (every synonym, the first one first)."""
    root = Path(root)
    nested = root / "tiny-imagenet-200"
    base = nested if (nested / "wnids.txt").is_file() else root
    wnid_file = base / "wnids.txt"
    raw = [line.strip() for line in _read_lines(wnid_file, "tinyimagenet")]
    for number, text in enumerate(raw, 1):
        if text and not WNID.fullmatch(text):
            raise DatasetError(f"{wnid_file}:{number}: {text!r} is not a WordNet id")
    wnids = sorted({w for w in raw if w})
    if not wnids:
        raise DatasetError(f"tinyimagenet: {wnid_file} lists no wnids")
    index = {w: i for i, w in enumerate(wnids)}
    words: dict[str, list[str]] = {}
    for line in _read_lines(base / "words.txt", "tinyimagenet"):
        wnid, _, synonyms = line.partition("\t")
        if wnid in index:
            words[wnid] = [n.strip() for n in synonyms.split(",") if n.strip()]
    missing = [w for w in wnids if not words.get(w)]
    if missing:
        raise DatasetError(f"tinyimagenet: {base / 'words.txt'} names no class for {missing[:5]}")
    files: list[tuple[Path, int]] = []
    if split == "train":
        for wnid in wnids:
            d = _need_dir(base / "train" / wnid / "images", "tinyimagenet")
            files.extend((f, index[wnid]) for f in _image_files(d))
    else:
        annotations = base / "val" / "val_annotations.txt"
        images = _need_dir(
            base / "val" / "images", "tinyimagenet", f"expected {LAYOUTS['tinyimagenet']}"
        )
        for number, line in enumerate(_read_lines(annotations, "tinyimagenet"), 1):
            fields = line.split("\t")
            if not line.strip():
                continue
            if len(fields) < 2 or fields[1] not in index:
                raise DatasetError(
                    f"{annotations}:{number}: expected FILE<tab>WNID (a wnid of wnids.txt), "
                    f"got {line!r}"
                )
            path = images / fields[0]
            if not path.is_file():
                raise DatasetError(f"{annotations}:{number}: {path} does not exist")
            files.append((path, index[fields[1]]))
    if not files:
        raise DatasetError(f"tinyimagenet: no images for split {split!r} in {base}")
    ds = _files_dataset("tinyimagenet", base, [words[w] for w in wnids], files)
    ds.wnids = wnids
    return ds


# kinds whose class names come from a class-list file only
NEEDS_CLASS_LIST = ("fashion_mnist", "imagenette", "imagewoof")


def open_dataset(
    kind: str,
    root: str | Path,
    split: str = "test",
    class_list: str | Path | None = None,
    name: str | None = None,
) -> ImageDataset:
    """Open a dataset of one of KINDS (see the module docstring)."""
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset kind {kind!r} (known: {', '.join(KINDS)})")
    if split not in SPLITS:
        raise DatasetError(f"{kind}: split must be one of {SPLITS}, got {split!r}")
    listed = read_class_list(class_list) if class_list else None
    if kind in NEEDS_CLASS_LIST and listed is None:
        raise DatasetError(f"{kind}: needs a class list (resources/class_names/{kind}.txt)")
    if kind == "folder":
        ds = image_folder(root, name or kind)
    elif kind == "images":
        ds = plain_images(root, name or kind)
    elif kind == "fashion_mnist":
        ds = fashion_mnist(root, split, listed or [])
    elif kind in ("cifar10", "cifar100"):
        ds = cifar(root, split, fine=kind == "cifar100")
    elif kind == "food101":
        ds = food101(root, split)
    elif kind == "imagenette":
        ds = imagenette(root, split, listed or [])
    elif kind == "imagewoof":
        ds = fastai_imagenet(root, split, listed or [], kind, IMAGEWOOF_WNIDS)
    elif kind == "imagenet1k":
        ds = imagenet1k(root, split, listed)
    elif kind in ("imagenet_a", "imagenet_r"):
        ds = imagenet_variant(root, split, listed, kind)
    else:
        ds = tinyimagenet(root, split)
    if listed is not None and kind != "images":
        if len(listed) != len(ds.classes) and ds.classes:
            raise DatasetError(
                f"{kind}: class list {class_list} has {len(listed)} classes, the data "
                f"{len(ds.classes)}"
            )
        declared = listed_wnids(class_list) if ds.wnids and class_list else None
        if declared is not None and declared != ds.wnids:
            i = next(i for i, (a, b) in enumerate(zip(declared, ds.wnids, strict=True)) if a != b)
            raise DatasetError(
                f"{kind}: class list {class_list} is for other classes: its class {i} is "
                f"{declared[i]}, the data's {ds.wnids[i]}"
            )
        ds.classes = listed
    if name:
        ds.name = name
    return ds


def check_labels(ds: ImageDataset) -> None:
    """Every label indexes a class (for labelled kinds)."""
    bad = [ds.ids[i] for i in ds.indices if not 0 <= ds.labels[i] < len(ds.classes)]
    if ds.classes and bad:
        raise DatasetError(f"{ds.name}: {len(bad)} samples have no class, e.g. {bad[:3]}")


def class_names(ds: ImageDataset) -> Sequence[str]:
    """The first name of each class (for tables)."""
    return [row[0] for row in ds.classes]
