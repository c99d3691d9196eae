"""Acceptance checks of the paper config's noun dictionary (issue 14), on the real dictionary.

The word lists in tests/data were written by hand, independently of the synset rules and the
frequencies: everyday picturable nouns that FT2 (and, where marked, FT9) must hold, and frequent
non-object words that must stay out. The other checks are the audit cases of the issue: plural
bugs, unmerged spellings, vocabulary sizes and benchmark coverage.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pytest

from novic.classlists import read_class_list
from novic.forms import canonical
from novic.nouns import REFERENCE_VOCAB_SIZES, threshold_vocab

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CLASS_NAMES = REPO / "resources" / "class_names"
SIZE_TOLERANCE = 0.2  # the issue's ±20% around the reference's vocabulary sizes
MARKS = {"*", "ft2"}  # picturable_nouns.txt: expected in FT9; non_object_words.txt: FT0 allowed


def read_word_list(path: Path) -> list[tuple[str, str]]:
    """(word, mark) pairs of a test word list: `#` comments, one word per line, an optional mark
    after it (`*` in picturable_nouns.txt, `ft2` in non_object_words.txt)."""
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        mark = parts.pop() if parts[-1] in MARKS and len(parts) > 1 else ""
        word = " ".join(parts)
        if canonical(word) != word:
            raise ValueError(f"{path}:{number}: {word!r} is not in canonical form")
        entries.append((word, mark))
    return entries


PICTURABLE = read_word_list(DATA / "picturable_nouns.txt")
NON_OBJECT = read_word_list(DATA / "non_object_words.txt")


class Vocab:
    """A noun table indexed by every name a noun answers to: its target and the canonical forms
    of its singular and plural variants (so merged spellings count either way)."""

    def __init__(self, table: pa.Table) -> None:
        self.rows = table.to_pylist()
        self.by_target = {row["target_noun"]: row for row in self.rows}
        self.by_name: dict[str, list[dict]] = {}
        for row in self.rows:
            names = {row["target_noun"]} | {canonical(v) for v in row["singulars"] + row["plurals"]}
            for name in names - {None}:
                self.by_name.setdefault(name, []).append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def missing(self, words: Iterable[str]) -> list[str]:
        return [word for word in words if word not in self]


def multiplicity(row: dict) -> int:
    return sum(row["singulars_freq"]) + sum(row["plurals_freq"])


@pytest.fixture(scope="module")
def dictionary(paper_dictionary: pa.Table) -> pa.Table:
    return paper_dictionary


@pytest.fixture(scope="module")
def vocab(dictionary: pa.Table) -> dict[int, Vocab]:
    return {t: Vocab(threshold_vocab(dictionary, t)) for t in REFERENCE_VOCAB_SIZES}


def test_word_lists_are_well_formed():
    picturable = [word for word, _ in PICTURABLE]
    assert len(picturable) == len(set(picturable)) >= 300
    assert sum(mark == "*" for _, mark in PICTURABLE) >= len(PICTURABLE) / 2
    non_object = [word for word, _ in NON_OBJECT]
    assert len(non_object) == len(set(non_object)) >= 150
    assert {mark for _, mark in NON_OBJECT} <= {"", "ft2"}
    assert not set(picturable) & set(non_object)


def test_picturable_nouns_in_ft2(vocab):
    missing = vocab[2].missing(word for word, _ in PICTURABLE)
    assert not missing, f"{len(missing)} of {len(PICTURABLE)} nouns not in FT2: {missing}"


def test_common_picturable_nouns_in_ft9(vocab):
    # The issue asks for half of the list in FT9; the nouns marked `*` (those a person expects
    # among the ~3,000 most common) must nearly all be there (measured: 244 of 253).
    common = [word for word, mark in PICTURABLE if mark == "*"]
    missing = vocab[9].missing(common)
    assert len(missing) <= 0.08 * len(common), (
        f"{len(missing)} of {len(common)} common nouns not in FT9: {missing}"
    )
    in_ft9 = len(PICTURABLE) - len(vocab[9].missing(word for word, _ in PICTURABLE))
    assert in_ft9 >= len(PICTURABLE) / 2, in_ft9


@pytest.mark.parametrize("threshold", sorted(REFERENCE_VOCAB_SIZES))
def test_no_non_object_words(vocab, threshold):
    """Bare words are in no vocabulary (FT0 is the whole dictionary); `ft2` words in none from
    FT2 up."""
    banned = [word for word, mark in NON_OBJECT if mark == "" or threshold >= 2]
    present = {
        word: max(multiplicity(row) for row in vocab[threshold].by_name[word])
        for word in banned
        if word in vocab[threshold]
    }
    assert not present, (
        f"{len(present)} of {len(banned)} non-object words in FT{threshold} "
        f"(word: multiplicity): {present}"
    )


@pytest.mark.parametrize("threshold", sorted(REFERENCE_VOCAB_SIZES))
def test_vocabulary_sizes_near_the_reference(vocab, threshold):
    size, reference = len(vocab[threshold]), REFERENCE_VOCAB_SIZES[threshold]
    assert abs(size - reference) <= SIZE_TOLERANCE * reference, (
        f"FT{threshold} has {size} nouns, {size / reference - 1:+.0%} from the reference's "
        f"{reference} (tolerance ±{SIZE_TOLERANCE:.0%})"
    )


# --- Audit cases -------------------------------------------------------------------------------


def test_doe_does_not_count_the_verb_does(vocab):
    doe = vocab[0].by_target["doe"]
    assert multiplicity(doe) <= 9, (
        f"doe has multiplicity {multiplicity(doe)}: {doe['singulars']} {doe['singulars_freq']}, "
        f"{doe['plurals']} {doe['plurals_freq']}"
    )


def test_specie_is_not_counted_through_species(vocab):
    specie = vocab[0].by_target.get("specie")
    if specie is not None:
        assert "species" not in specie["plurals"], f"specie: plurals {specie['plurals']}"
    assert "specie" not in vocab[9].by_target


@pytest.mark.parametrize(
    "noun, plurals, wrong",
    [
        ("bus", ["buses"], ["busses"]),
        ("pea", ["peas"], ["pease"]),
        ("deer", ["deer"], []),
        ("sheep", ["sheep"], []),
    ],
)
def test_plurals(vocab, noun, plurals, wrong):
    row = vocab[0].by_target[noun]
    assert set(plurals) <= set(row["plurals"]), f"{noun}: {row['plurals']}"
    assert not set(wrong) & set(row["plurals"]), f"{noun}: {row['plurals']}"


def test_camera_plurals_exactly(vocab):
    assert vocab[0].by_target["camera"]["plurals"] == ["cameras"]


def test_cola_is_not_a_plural_of_colon(vocab):
    assert "cola" not in vocab[0].by_target["colon"]["plurals"]


def test_jeans_is_plural_only(vocab):
    """The garment (jean.n.01) is named "jeans" and has no singular "jean" or "blue jean" (the
    fabric, denim.n.02, may keep "jean")."""
    garments = [row for row in vocab[0].rows if "jean.n.01" in row["synsets"]]
    assert garments, "no noun holds jean.n.01"
    for row in garments:
        singular_jeans = [s for s in row["singulars"] if s.split()[-1].lower() == "jean"]
        assert not singular_jeans, f"{row['target_noun']}: singulars {row['singulars']}"
    assert any("jeans" in row["singulars"] + row["plurals"] for row in garments), garments


@pytest.mark.parametrize("forms", [("aeroplane", "airplane"), ("hot dog", "hotdog")])
def test_spelling_variants_are_one_noun(vocab, forms):
    rows = {row["id"]: row for form in forms for row in vocab[0].by_name.get(form, [])}
    targets = [row["target_noun"] for row in rows.values()]
    assert len(rows) == 1, f"{forms} are {len(rows)} nouns: {targets}"


# --- Benchmark coverage ------------------------------------------------------------------------


def class_rows(name: str) -> list[list[str]]:
    path = CLASS_NAMES / f"{name}.txt"
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} does not exist yet (another part of issue 14)")
    return read_class_list(path)


def uncovered(rows: list[list[str]], vocab: Vocab) -> list[str]:
    """Classes none of whose names (canonical forms) the vocabulary answers to."""
    return [", ".join(row) for row in rows if not any(canonical(name) in vocab for name in row)]


def test_coco_fully_in_ft2(vocab):
    rows = class_rows("coco")
    missing = uncovered(rows, vocab[2])
    assert not missing, f"{len(missing)} of {len(rows)} COCO classes not in FT2: {missing}"


def test_food101_mostly_in_ft2(vocab):
    rows = class_rows("food101")
    missing = uncovered(rows, vocab[2])
    assert len(missing) <= 0.05 * len(rows), (
        f"{len(missing)} of {len(rows)} Food-101 classes not in FT2 (at most 5%): {missing}"
    )


def test_imagenet_half_in_ft9(vocab):
    rows = class_rows("imagenet1k")
    covered = len(rows) - len(uncovered(rows, vocab[9]))
    assert covered >= 500, f"FT9 covers {covered} of {len(rows)} ImageNet-1k classes (need 500)"
