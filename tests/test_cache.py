"""novic.cache: shard round trip, resume of a half-written shard, validation, the mix manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from novic.cache import (
    CacheMismatchError,
    build_mix,
    check_shard,
    embed_shard,
    embedding_table,
    fixed_list_numpy,
    read_mix,
    shard_permutation,
    write_mix,
)
from novic.dictionary import META_CONTENT, noun_row, noun_table
from novic.embedders import Embedder, load_embedder
from novic.io import read_metadata, write_parquet
from novic.textdata import TextShardWriter, text_batch

NOUNS = ["dog", "cat", "apple", "fire truck", "x-ray machine", "lighthouse", "chair"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_vocab(path: Path, content: str = "vocab-a") -> Path:
    table = noun_table(noun_row(i, [noun], frequency=1e-5) for i, noun in enumerate(NOUNS, 1))
    write_parquet(table, path, {META_CONTENT: content})
    return path


def write_texts(path: Path, rows: int, vocab_sha: str = "vocab-a", m: int = 2) -> Path:
    rng = np.random.default_rng(rows)
    targets = rng.integers(1, len(NOUNS) + 1, (rows, m))
    texts = [
        f"a photo of {' and '.join(f'a {NOUNS[t - 1]}' for t in row)} number {i}."
        for i, row in enumerate(targets)
    ]
    meta = {"novic.vocab_sha256": vocab_sha, "novic.threshold": "9"}
    with TextShardWriter(path, meta) as writer:
        writer.write(text_batch(texts, targets))
    return path


def embed(tiny: Embedder, texts: Path, out: Path, **kwargs) -> dict:
    settings = {"chunk_rows": 64, "row_group_rows": 32, "batch_size": 16, **kwargs}
    return embed_shard(texts, out, tiny, "tiny", "prompts/ft9/m2/part-0000", **settings)


def test_round_trip_shuffled_with_metadata(tiny: Embedder, tmp_path: Path) -> None:
    texts = write_texts(tmp_path / "texts.parquet", 150)
    out = tmp_path / "emb.parquet"
    stats = embed(tiny, texts, out)
    assert stats["rows"] == stats["embedded_now"] == 150
    assert not out.with_name(out.name + ".partial").exists()

    source = pq.read_table(texts)
    table = pq.read_table(out)
    assert table.num_rows == 150
    assert pq.ParquetFile(out).metadata.num_row_groups == 5  # 32 rows each
    assert table.schema.field("embedding").type == pa.list_(pa.float16(), tiny.dim)
    order = shard_permutation(150, 0, "prompts/ft9/m2/part-0000")
    assert not np.array_equal(order, np.arange(150))  # really shuffled
    emb = fixed_list_numpy(table.column("embedding"), tiny.dim).astype(np.float32)
    expected = tiny.encode_texts(source.column("text").take(order).to_pylist())
    assert np.abs(emb - expected).max() < 2e-3  # float16 storage
    for name in ("targets", "weights"):
        got = fixed_list_numpy(table.column(name), 3)
        np.testing.assert_array_equal(got, fixed_list_numpy(source.column(name), 3)[order])

    meta = read_metadata(out)
    assert meta["novic.embedder"] == "tiny"
    assert json.loads(meta["novic.embedder_spec"]) == {"tiny": {"seed": 0}}
    assert meta["novic.embedder_sha256"] == tiny.sha256
    assert (meta["novic.dim"], meta["novic.dtype"], meta["novic.rows"]) == ("64", "float16", "150")
    assert meta["novic.vocab_sha256"] == "vocab-a"
    assert meta["novic.source"] == "prompts/ft9/m2/part-0000"
    assert len(meta["novic.source_sha256"]) == 64


def test_float32_and_other_seed(tiny: Embedder, tmp_path: Path) -> None:
    texts = write_texts(tmp_path / "texts.parquet", 40)
    embed(tiny, texts, tmp_path / "a.parquet", dtype="float32", seed=1)
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), tiny.dim)
    order = shard_permutation(40, 1, "prompts/ft9/m2/part-0000")
    got = fixed_list_numpy(table.column("embedding"), tiny.dim)
    expected = tiny.encode_texts(pq.read_table(texts).column("text").take(order).to_pylist())
    assert np.abs(got - expected).max() < 1e-5


class Interrupted(Exception):
    pass


def test_resume_half_written_shard(tiny: Embedder, tmp_path: Path, monkeypatch) -> None:
    texts = write_texts(tmp_path / "texts.parquet", 200)
    reference = tmp_path / "reference.parquet"
    embed(tiny, texts, reference)

    out = tmp_path / "emb.parquet"
    calls = {"n": 0}
    original = Embedder.encode_tokens

    def dies_on_third_chunk(self, tokens, batch_size=256):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupted
        return original(self, tokens, batch_size)

    monkeypatch.setattr(Embedder, "encode_tokens", dies_on_third_chunk)
    with pytest.raises(Interrupted):
        embed(tiny, texts, out)
    monkeypatch.setattr(Embedder, "encode_tokens", original)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists()
    assert sorted(p.name for p in partial.glob("chunk-*")) == [
        "chunk-00000.parquet",
        "chunk-00001.parquet",
    ]

    stats = embed(tiny, texts, out)
    assert stats["embedded_now"] == 200 - 2 * 64  # the two finished chunks were kept
    assert not partial.exists()
    assert pq.read_table(out).equals(pq.read_table(reference))

    # Partial results of other settings are discarded, not mixed in.
    embed(tiny, texts, tmp_path / "other.parquet")
    monkeypatch.setattr(Embedder, "encode_tokens", dies_on_third_chunk)
    calls["n"] = 0
    with pytest.raises(Interrupted):
        embed(tiny, texts, out.with_name("again.parquet"))
    monkeypatch.setattr(Embedder, "encode_tokens", original)
    stats = embed(tiny, texts, out.with_name("again.parquet"), dtype="float32")
    assert stats["embedded_now"] == 200


def test_rejects_non_unit_embeddings() -> None:
    emb = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="3 embeddings are not unit norm"):
        embedding_table(emb, np.ones((3, 1)), np.ones((3, 1)), "float16")
    emb[:, 1:] = 0
    emb[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 embeddings are not unit norm \(row 1"):
        embedding_table(emb, np.ones((3, 1)), np.ones((3, 1)), "float16")


@pytest.fixture(scope="module")
def cache(tiny: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cache: m1 (2 shards), captions (1 shard), a held-out shard, and its vocabulary."""
    root = tmp_path_factory.mktemp("cache")
    write_vocab(root / "vocab.parquet")
    for name, rows in [("m1-0", 50), ("m1-1", 60), ("cap-0", 30), ("heldout", 20)]:
        write_texts(root / f"{name}.texts.parquet", rows)
        embed(tiny, root / f"{name}.texts.parquet", root / "emb" / f"{name}.parquet")
    return root


def make_mix(tiny: Embedder, root: Path) -> object:
    return build_mix(
        "run1",
        "tiny",
        tiny.info(),
        root / "vocab.parquet",
        9,
        {
            "m1": (1, [root / "emb/m1-0.parquet", root / "emb/m1-1.parquet"]),
            "captions": (4, [root / "emb/cap-0.parquet"]),
        },
        {"m1": root / "emb/heldout.parquet"},
    )


def test_mix_round_trip(tiny: Embedder, cache: Path, tmp_path: Path) -> None:
    mix = make_mix(tiny, cache)
    assert mix.epoch_rows == 50 + 60 + 4 * 30
    path = tmp_path / "models" / "run1" / "mix.json"
    write_mix(mix, path)
    stored = json.loads(path.read_text())
    assert not Path(stored["sources"][0]["shards"][0]["path"]).is_absolute()
    assert stored["sources"][1] | {"shards": None} == {
        "name": "captions",
        "weight": 4.0,
        "rows": 30,
        "shards": None,
    }
    back = read_mix(path, vocab=cache / "vocab.parquet", embedder_sha256=tiny.sha256)
    assert [(s.name, s.weight, s.rows) for s in back.sources] == [
        ("m1", 1.0, 110),
        ("captions", 4.0, 30),
    ]
    assert back.heldout["m1"].rows == 20
    assert (back.dim, back.dtype, back.max_targets, back.threshold) == (64, "float16", 3, 9)
    assert back.embedder_spec == {"tiny": {"seed": 0}}
    assert back.sources[0].shards[0].path.resolve() == (cache / "emb/m1-0.parquet").resolve()


def test_mix_refuses_mismatches(tiny: Embedder, cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(cache, root)
    path = tmp_path / "mix.json"
    write_mix(make_mix(tiny, root), path)

    with pytest.raises(CacheMismatchError, match="embedder mismatch"):
        read_mix(path, embedder_sha256="0" * 64)
    write_vocab(tmp_path / "other_vocab.parquet", "vocab-b")
    with pytest.raises(CacheMismatchError, match="noun table mismatch"):
        read_mix(path, vocab=tmp_path / "other_vocab.parquet")

    # A shard re-embedded with another embedder (same dim) is named.
    other = load_embedder({"tiny": {"seed": 1}})
    embed_shard(
        root / "cap-0.texts.parquet",
        root / "emb/cap-0.parquet",
        other,
        "tiny",
        "x",
        row_group_rows=32,
    )
    with pytest.raises(CacheMismatchError, match=r"cap-0\.parquet: embedder mismatch"):
        read_mix(path)
    embed(tiny, root / "cap-0.texts.parquet", root / "emb/cap-0.parquet", dtype="float32")
    with pytest.raises(CacheMismatchError, match=r"cap-0\.parquet: embedding dtype mismatch"):
        read_mix(path)

    # A shard of other texts (other row count) is named.
    write_texts(root / "m1-1.texts.parquet", 61)
    embed(tiny, root / "m1-1.texts.parquet", root / "emb/m1-1.parquet")
    with pytest.raises(
        CacheMismatchError,
        match=r"m1-1\.parquet: row count mismatch \(61 rows, the mix expects 60\)",
    ):
        read_mix(path)
    assert read_mix(path, check=False).sources[0].rows == 110

    # Texts of another vocabulary.
    write_texts(root / "m1-1.texts.parquet", 60, vocab_sha="vocab-b")
    embed(tiny, root / "m1-1.texts.parquet", root / "emb/m1-1.parquet")
    with pytest.raises(CacheMismatchError, match=r"m1-1\.parquet: noun table mismatch"):
        read_mix(path)


def test_check_shard_dim_and_missing(tiny: Embedder, cache: Path) -> None:
    shard = cache / "emb/m1-0.parquet"
    assert check_shard(shard, {"novic.dim": "64"}) == 50
    with pytest.raises(
        CacheMismatchError, match=r"embedding dim mismatch \(novic.dim is 64, expected 768\)"
    ):
        check_shard(shard, {"novic.dim": "768"})
    with pytest.raises(CacheMismatchError, match="does not exist"):
        check_shard(cache / "emb/nope.parquet", {})
    with pytest.raises(CacheMismatchError, match="not an embedding shard"):
        check_shard(cache / "m1-0.texts.parquet", {})


def test_build_mix_unknown_source(tiny: Embedder, cache: Path) -> None:
    with pytest.raises(ValueError, match=r"runs\.r\.mix: unknown sources \['m4'\]"):
        build_mix("r", "tiny", tiny.info(), cache / "vocab.parquet", 9, {"m4": (1, [])})
