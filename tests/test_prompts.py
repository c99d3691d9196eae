"""Prompt templates, the multiset generator and the text-dataset writer, on small real files."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from novic.dictionary import (
    META_CONTENT,
    META_THRESHOLD,
    noun_row,
    noun_table,
    nouns_fingerprint,
)
from novic.io import read_metadata, sha256_file
from novic.prompts import (
    block_batch,
    load_templates,
    make_prompts,
    multiset_rows,
    parse_template,
    plan_blocks,
    template_totals,
    vocab_variants,
)
from novic.textdata import (
    TextShardWriter,
    iter_text_batches,
    read_text,
    shard_name,
    text_batch,
    text_num_rows,
    text_schema,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "resources" / "prompt_templates.tsv"

# id, target, singulars, singular multiplicities, plurals, plural multiplicities
NOUNS = [
    (1, "dog", ["dog"], [3], ["dogs"], [2]),
    (2, "apple", ["apple"], [1], ["apples"], [1]),
    (3, "t shirt", ["T-shirt", "tee shirt"], [2, 1], ["T-shirts"], [1]),
    (5, "hour", ["hour"], [1], [], []),
    (7, "scissors", [], [], ["scissors"], [2]),
]


def write_vocab(path: Path, nouns=NOUNS, content: str = "vocab-hash", threshold: str = "0") -> Path:
    table = noun_table(
        noun_row(noun_id, sing, plur, singulars_freq=sing_f, plurals_freq=plur_f,
                 frequency=1e-5, target=target)
        for noun_id, target, sing, sing_f, plur, plur_f in nouns
    )  # fmt: skip
    meta = {META_CONTENT.encode(): content.encode(), META_THRESHOLD.encode(): threshold.encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def settings(**overrides):
    base = {
        "collections": ["imagenet", "cifar"],
        "freq": 1,
        "seed": 0,
        "heldout": [],
        "heldout_rows": 100,
        "fraction": 1,
    }
    return base | overrides


def generate(tmp_path: Path, m: int, shards: int = 3, name: str = "out", **overrides):
    vocab = tmp_path / "ft0.parquet"
    if not vocab.exists():
        write_vocab(vocab)
    out = tmp_path / name / f"m{m}"
    paths = [out / shard_name(k) for k in range(shards)]
    stats = make_prompts(vocab, TEMPLATES, paths, out / "heldout.parquet", m, settings(**overrides))
    return stats, paths, out / "heldout.parquet"


# --- templates ------------------------------------------------------------------------------


def test_reference_template_counts():
    templates = load_templates(TEMPLATES)
    assert len(templates) == 86
    assert template_totals(templates, "singular") == (85, 97)
    assert template_totals(templates, "plural") == (68, 79)
    assert sum(t.weight == 2 for t in templates) == 12


def test_collections_select_and_merge():
    imagenet = load_templates(TEMPLATES, ["imagenet"])
    cifar = load_templates(TEMPLATES, ["cifar"])
    assert (len(imagenet), len(cifar)) == (80, 18)
    assert all(t.weight == 1 for t in imagenet + cifar)
    with pytest.raises(ValueError, match=r"no template collection \['coco'\]"):
        load_templates(TEMPLATES, ["coco"])


def test_fill_follows_the_reference_examples():
    by_text = {t.text: t for t in load_templates(TEMPLATES)}
    photo = by_text["a photo of {article_noun}."]
    assert photo.fill("dog", "apple", "cart") == "a photo of a dog and an apple and a cart."
    assert photo.fill("dogs", number="plural") == "a photo of dogs."
    assert by_text["a photo of many {plural}."].fill("dogs", number="plural") == (
        "a photo of many dogs."
    )
    assert by_text["an origami {singular}."].fill("owl") == "an origami owl."
    assert by_text["itap of my {noun}."].used_for("plural")
    assert not by_text["a sculpture of {article_singular}."].used_for("plural")
    assert by_text["a sculpture of {article_singular}."].fill("owl") == "a sculpture of an owl."


def test_parse_template_appends_the_full_stop():
    assert parse_template("a photo of the {noun}").text == "a photo of the {noun}."


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("imagenet\t1\ta photo of {thing}.", ":3: template .* exactly one placeholder"),
        ("imagenet\t1\t{noun} and {plural}.", ":3: template .* exactly one placeholder"),
        ("imagenet\t1\ta photo.", ":3: template .* exactly one placeholder"),
        ("imagenet\t1\ta {noun} }.", ":3: template .* stray brace"),
        ("imagenet\t0\ta photo of {noun}.", r":3: weight must be a positive integer"),
        ("imagenet\tone\ta photo of {noun}.", r":3: weight must be a positive integer"),
        ("imagenet\ta photo of {noun}.", r":3: expected 3 tab-separated fields"),
    ],
)
def test_bad_template_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "templates.tsv"
    path.write_text(f"# comment\ncollection\tweight\ttemplate\n{line}\n")
    with pytest.raises(ValueError, match=message) as info:
        load_templates(path)
    assert str(path) in str(info.value)


def test_missing_header_is_an_error(tmp_path):
    path = tmp_path / "templates.tsv"
    path.write_text("imagenet\t1\ta photo of {noun}.\n")
    with pytest.raises(ValueError, match=r":1: header must be"):
        load_templates(path)


# --- vocabulary variants --------------------------------------------------------------------


def test_variants_are_expanded_by_multiplicity(tmp_path):
    from novic.dictionary import read_nouns

    variants = vocab_variants(read_nouns(write_vocab(tmp_path / "v.parquet")))
    sing = variants["singular"]
    assert sing.bare.to_pylist() == ["dog", "apple", "T-shirt", "tee shirt", "hour"]
    assert sing.articled.to_pylist() == ["a dog", "an apple", "a T-shirt", "a tee shirt", "an hour"]
    assert sing.total == 3 + 1 + 2 + 1 + 1
    assert variants["plural"].noun_ids.tolist() == [1, 2, 3, 7]


@pytest.mark.parametrize(
    ("noun", "message"),
    [
        ((0, "dog", ["dog"], [1], [], []), "noun id 0"),
        ((4, "dog", ["dog", "doggy"], [1], [], []), "noun id 4: 2 singulars but 1 singulars_freq"),
        ((4, "dog", ["dog"], [0], [], []), "noun id 4: bad singular 'dog' x 0"),
    ],
)
def test_bad_vocabulary_names_the_noun(tmp_path, noun, message):
    vocab = write_vocab(tmp_path / "ft0.parquet", [*NOUNS, noun])
    paths = [tmp_path / "p" / shard_name(0)]
    with pytest.raises(ValueError, match=message) as info:
        make_prompts(vocab, TEMPLATES, paths, tmp_path / "h.parquet", 1, settings())
    assert str(vocab) in str(info.value)
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


# --- the multiset generator -----------------------------------------------------------------


def expected_rows(nouns=NOUNS, singular_weight=97, plural_weight=79) -> int:
    """The reference's formula, straight from the vocabulary's multiplicities."""
    sing = sum(sum(n[3]) for n in nouns)
    plur = sum(sum(n[5]) for n in nouns)
    return sing * singular_weight + plur * plural_weight


@pytest.mark.parametrize("m", [1, 2, 3])
def test_row_count_matches_the_formula(tmp_path, m):
    stats, paths, heldout = generate(tmp_path, m)
    assert text_num_rows(paths) == expected_rows() == stats["rows"]
    assert sum(stats["shard_rows"]) == stats["rows"]
    assert max(stats["shard_rows"]) - min(stats["shard_rows"]) <= 1
    assert text_num_rows(heldout) == 0


def test_formula_helper_agrees(tmp_path):
    from novic.dictionary import read_nouns

    variants = vocab_variants(read_nouns(write_vocab(tmp_path / "v.parquet")))
    templates = load_templates(TEMPLATES)
    assert multiset_rows(variants, templates) == expected_rows()
    assert multiset_rows(variants, templates, freq=2) == 2 * expected_rows()
    assert sum(b.rows for b in plan_blocks(templates, variants)) == expected_rows()


@pytest.mark.parametrize("m", [1, 2, 3])
def test_every_slot_draws_each_variant_by_its_multiplicity(tmp_path, m):
    _, paths, _ = generate(tmp_path, m)
    table = read_text(paths)
    targets = np.array(table.column("targets").to_pylist())
    weights = np.array(table.column("weights").to_pylist())
    assert targets.shape[1] == 3
    assert (targets[:, :m] > 0).all() and (targets[:, m:] == 0).all()
    assert np.allclose(weights[:, :m], 1 / m) and (weights[:, m:] == 0).all()
    # each slot, over the whole Mm, holds every noun (multiplicity x template weight) times
    want = collections.Counter()
    for noun_id, _, _, sing_f, _, plur_f in NOUNS:
        want[noun_id] = sum(sing_f) * 97 + sum(plur_f) * 79
    for slot in range(m):
        assert collections.Counter(targets[:, slot].tolist()) == want


def test_block_zips_independent_permutations(tmp_path):
    from novic.dictionary import read_nouns

    variants = vocab_variants(read_nouns(write_vocab(tmp_path / "v.parquet")))
    templates = [t for t in load_templates(TEMPLATES) if t.text == "a photo of {article_noun}."]
    sing = next(b for b in plan_blocks(templates, variants) if b.number == "singular")
    batch = block_batch(sing, variants["singular"], 3, seed=0)
    assert batch.num_rows == variants["singular"].total == 8
    texts = batch.column("text").to_pylist()
    nouns = [t.removeprefix("a photo of ").removesuffix(".").split(" and ") for t in texts]
    assert all(len(n) == 3 for n in nouns)
    articled = collections.Counter(x for row in nouns for x in row)
    # every variant, each with its own article, multiplicity x 3 slots
    assert articled == {"a dog": 9, "an apple": 3, "a T-shirt": 6, "a tee shirt": 3, "an hour": 3}
    slots = [sorted(row[j] for row in nouns) for j in range(3)]
    assert slots[0] == slots[1] == slots[2]
    assert len({tuple(row) for row in nouns}) > 1  # the slots are not all in the same order
    plural = next(b for b in plan_blocks(templates, variants) if b.number == "plural")
    texts = block_batch(plural, variants["plural"], 2, seed=0).column("text").to_pylist()
    plurals = ["dogs", "apples", "T-shirts", "scissors"]
    assert set(texts) <= {f"a photo of {x} and {y}." for x in plurals for y in plurals}


def test_text_and_targets_agree(tmp_path):
    _, paths, _ = generate(tmp_path, 2)
    name = {1: "dog", 2: "apple", 3: "shirt", 5: "hour", 7: "scissors"}
    for row in read_text(paths).to_pylist():
        first, second = (name[t] for t in row["targets"][:2])
        start = row["text"].index(first)  # the nouns appear in target order
        assert row["text"].index(second, start + len(first)) > start


def test_fixed_seed_gives_identical_files(tmp_path):
    _, first, _ = generate(tmp_path, 3, name="a")
    _, again, _ = generate(tmp_path, 3, name="b")
    _, other, _ = generate(tmp_path, 3, name="c", seed=1)
    assert [sha256_file(p) for p in first] == [sha256_file(p) for p in again]
    assert read_text(first).column("text") != read_text(other).column("text")


def test_shard_count_does_not_change_the_rows(tmp_path):
    _, one, _ = generate(tmp_path, 2, shards=1, name="one")
    _, five, _ = generate(tmp_path, 2, shards=5, name="five")
    rows = sorted(map(str, read_text(one).to_pylist()))
    assert rows == sorted(map(str, read_text(five).to_pylist()))


def test_every_shard_holds_every_template(tmp_path):
    _, paths, _ = generate(tmp_path, 1, shards=2)
    prefixes = {t.prefix for t in load_templates(TEMPLATES)}
    for path in paths:
        texts = read_text(path).column("text").to_pylist()
        assert {p for p in prefixes if any(t.startswith(p) for t in texts)} == prefixes


def test_multiset_frequency_repeats_the_draws(tmp_path):
    stats, paths, _ = generate(tmp_path, 2, freq=2)
    assert text_num_rows(paths) == stats["rows"] == 2 * expected_rows()


def test_fraction_keeps_part_of_every_block(tmp_path):
    stats, paths, _ = generate(tmp_path, 1, fraction=0.25)
    from novic.dictionary import read_nouns

    variants = vocab_variants(read_nouns(tmp_path / "ft0.parquet"))
    blocks = plan_blocks(load_templates(TEMPLATES), variants)
    assert text_num_rows(paths) == stats["rows"] == sum(math.ceil(b.rows / 4) for b in blocks)


def test_heldout_templates_stay_out_of_training(tmp_path):
    held = ["a photo of {article_noun}.", "a toy {singular}"]
    stats, paths, heldout = generate(tmp_path, 2, heldout=held, heldout_rows=20)
    # "a photo of {article_noun}." has weight 2 in both numbers, "a toy" 1 in the singular
    assert text_num_rows(paths) == expected_rows(singular_weight=94, plural_weight=77)
    assert stats["templates"] == {
        "singular": {"count": 83, "weight": 94},
        "plural": {"count": 67, "weight": 77},
    }
    by_text = {t.text: t for t in load_templates(TEMPLATES)}
    photo, toy = by_text["a photo of {article_noun}."], by_text["a toy {singular}."]
    sing = ["dog", "apple", "T-shirt", "tee shirt", "hour"]
    plur = ["dogs", "apples", "T-shirts", "scissors"]
    held_texts = {t.fill(x, y) for t in (photo, toy) for x in sing for y in sing}
    held_texts |= {photo.fill(x, y, number="plural") for x in plur for y in plur}
    train = set(read_text(paths).column("text").to_pylist())
    assert not train & held_texts
    held_rows = read_text(heldout).column("text").to_pylist()
    assert len(held_rows) == 20 == stats["heldout_rows"]
    assert set(held_rows) <= held_texts
    assert any(t.startswith("a toy ") for t in held_rows)
    assert read_metadata(heldout)["novic.split"] == "heldout"


def test_unknown_heldout_template_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"prompts.heldout: \['a photo of a {noun}.'\]"):
        generate(tmp_path, 1, heldout=["a photo of a {noun}."])


def test_metadata_identifies_the_vocabulary(tmp_path):
    _, paths, _ = generate(tmp_path, 3)
    meta = read_metadata(paths[1])
    assert meta["novic.artifact"] == "prompts"
    assert meta["novic.vocab_sha256"] == nouns_fingerprint(tmp_path / "ft0.parquet")
    assert meta["novic.threshold"] == "0"
    assert (meta["novic.multiset"], meta["novic.seed"], meta["novic.shard"]) == ("3", "0", "1/3")
    assert meta["novic.max_targets"] == "3"
    assert pq.read_schema(paths[1]).remove_metadata().equals(text_schema())


# --- the text-dataset writer ----------------------------------------------------------------


def test_writer_streams_row_groups_and_pads(tmp_path):
    path = tmp_path / "x.parquet"
    with TextShardWriter(path, {"novic.artifact": "t"}, row_group_rows=4) as writer:
        for i in range(5):
            writer.write(text_batch([f"t{i}a", f"t{i}b", f"t{i}c"], [[i + 1]] * 3))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 15
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 4, 3]
    rows = read_text(path).to_pylist()
    assert rows[0] == {"text": "t0a", "targets": [1, 0, 0], "weights": [1.0, 0.0, 0.0]}
    assert sum(b.num_rows for b in iter_text_batches([path, path], batch_rows=6)) == 30


def test_writer_discards_the_file_on_error(tmp_path):
    path = tmp_path / "x.parquet"
    with pytest.raises(KeyError), TextShardWriter(path) as writer:
        writer.write(text_batch(["a"], [[1]]))
        raise KeyError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_text_batch_rejects_bad_shapes():
    with pytest.raises(ValueError, match="4 targets per row"):
        text_batch(["a"], [[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="weights shape"):
        text_batch(["a"], [[1, 2]], [[1.0]])
    with pytest.raises(ValueError, match="targets must be"):
        text_batch(["a", "b"], [[1]])
