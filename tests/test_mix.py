"""novic.mix: the mix manifest's round trip and its refusal of mismatched, swapped and damaged
shards."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from tiny_shards import embed, write_cache, write_texts, write_vocab

from novic.embed import embed_shard
from novic.embedders import Embedder, load_embedder
from novic.io import read_metadata
from novic.mix import build_mix, read_mix, write_mix
from novic.shards import CHECKSUM_KEY, CacheMismatchError, DamagedShardError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tiny: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cache: m1 (2 shards), captions (1 shard), a held-out shard, and its vocabulary."""
    return write_cache(tiny, tmp_path_factory.mktemp("cache"))


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
    root, path = mix_of_a_copy(tiny, cache, tmp_path)

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


def test_build_mix_unknown_source(tiny: Embedder, cache: Path) -> None:
    with pytest.raises(ValueError, match=r"runs\.r\.mix: unknown sources \['m4'\]"):
        build_mix("r", "tiny", tiny.info(), cache / "vocab.parquet", 9, {"m4": (1, [])})


def test_mix_records_sources_and_checksums(tiny: Embedder, cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "mix.json"
    write_mix(make_mix(tiny, cache), path)
    stored = json.loads(path.read_text())
    assert stored["version"] == 2
    first = stored["sources"][0]["shards"][0]
    assert first["source"] == "m1-0"
    assert first["checksum"] == read_metadata(cache / "emb/m1-0.parquet")[CHECKSUM_KEY]
    assert stored["heldout"]["m1"]["source"] == "heldout"


def mix_of_a_copy(tiny: Embedder, cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the cache to damage, and its mix manifest written before the damage."""
    root = tmp_path / "copy"
    shutil.copytree(cache, root)
    path = tmp_path / "mix.json"
    write_mix(make_mix(tiny, root), path)
    return root, path


def test_a_sibling_written_over_a_shard_is_refused(
    tiny: Embedder, cache: Path, tmp_path: Path
) -> None:
    """A shard overwritten by its sibling with the same row count (same texts, other place)."""
    root, path = mix_of_a_copy(tiny, cache, tmp_path)
    embed(tiny, root / "m1-0.texts.parquet", root / "emb/m1-2.parquet", "m1-2")
    shutil.copy(root / "emb/m1-2.parquet", root / "emb/m1-0.parquet")
    with pytest.raises(
        CacheMismatchError,
        match=r"m1-0\.parquet: source mismatch \(novic.source is m1-2, expected m1-0\)",
    ):
        read_mix(path)
    with pytest.raises(CacheMismatchError, match=r"m1-0\.parquet: source mismatch"):
        make_mix(tiny, root)


def test_a_shard_changed_after_the_mix_is_refused(
    tiny: Embedder, cache: Path, tmp_path: Path
) -> None:
    root, path = mix_of_a_copy(tiny, cache, tmp_path)
    embed(tiny, root / "m1-0.texts.parquet", root / "emb/m1-0.parquet", "m1-0", seed=1)
    with pytest.raises(CacheMismatchError, match=r"m1-0\.parquet: content checksum mismatch"):
        read_mix(path)


def test_a_truncated_shard_is_named(tiny: Embedder, cache: Path, tmp_path: Path) -> None:
    root, path = mix_of_a_copy(tiny, cache, tmp_path)
    shard = root / "emb/cap-0.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DamagedShardError, match=r"cap-0\.parquet: unreadable embedding shard"):
        read_mix(path)
    with pytest.raises(DamagedShardError, match=r"cap-0\.parquet: unreadable embedding shard"):
        make_mix(tiny, root)
    path.write_text(path.read_text()[:100])
    with pytest.raises(CacheMismatchError, match=r"mix\.json: unreadable mix manifest"):
        read_mix(path)


def test_a_mix_of_version_1_is_read_with_a_warning(
    tiny: Embedder, cache: Path, tmp_path: Path, caplog
) -> None:
    path = tmp_path / "mix.json"
    write_mix(make_mix(tiny, cache), path)
    stored = json.loads(path.read_text())
    stored["version"] = 1
    for source in stored["sources"]:
        for shard in source["shards"]:
            del shard["source"], shard["checksum"]
    path.write_text(json.dumps(stored))
    with caplog.at_level(logging.WARNING, logger="novic.mix"):
        mix = read_mix(path, vocab=cache / "vocab.parquet")
    assert "checked against their paths only" in caplog.text
    assert mix.sources[0].shards[0].checksum is None and mix.epoch_rows == 50 + 60 + 4 * 30
