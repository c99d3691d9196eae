"""novic.embed: shard round trip with checksums, resume of a half-written shard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_shards import embed, write_texts

from novic.embedders import Embedder
from novic.io import read_metadata
from novic.shards import CRC_KEY, check_shard, fixed_list_numpy, shard_permutation

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    assert len(json.loads(meta[CRC_KEY])) == 5  # one per row group, checked by check_shard
    assert meta["novic.device"] == "cpu"  # where the job ran (the GPU smoke run checks it)
    assert check_shard(out, {}, source="prompts/ft9/m2/part-0000") == 150


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

    chunk = partial / "chunk-00001.parquet"  # a chunk file damaged since: embedded again
    chunk.write_bytes(chunk.read_bytes()[:-20])
    stats = embed(tiny, texts, out)
    assert stats["embedded_now"] == 200 - 64  # the intact finished chunk was kept
    assert not partial.exists()
    assert pq.read_table(out).equals(pq.read_table(reference))
    assert read_metadata(out) == read_metadata(reference)  # the same checksums

    # Partial results of other settings are discarded, not mixed in.
    embed(tiny, texts, tmp_path / "other.parquet")
    monkeypatch.setattr(Embedder, "encode_tokens", dies_on_third_chunk)
    calls["n"] = 0
    with pytest.raises(Interrupted):
        embed(tiny, texts, out.with_name("again.parquet"))
    monkeypatch.setattr(Embedder, "encode_tokens", original)
    stats = embed(tiny, texts, out.with_name("again.parquet"), dtype="float32")
    assert stats["embedded_now"] == 200


def test_tokenizing_processes_start_under_a_snakemake_script(tmp_path: Path) -> None:
    """On a GPU node the job tokenizes in spawned processes. Snakemake runs a rule's script
    from a copy with its preamble but leaves __main__.__file__ naming the original, which a
    spawned child would run first and fail on (seen on an H100: NameError: snakemake)."""
    import subprocess
    import sys

    texts = write_texts(tmp_path / "texts.parquet", 40)
    script = tmp_path / "rule_script.py"
    script.write_text("job = start(snakemake)\n")  # what a rule's script does first
    code = f"""
import __main__, sys
__main__.__file__ = {str(script)!r}
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from novic.embedders import load_embedder
from tiny_shards import embed
tiny = load_embedder({{"tiny": {{"seed": 0}}}})
stats = embed(tiny, Path({str(texts)!r}), Path({str(tmp_path / "emb.parquet")!r}),
              tokenize_workers=1)
assert stats["rows"] == 40 and __main__.__file__ == {str(script)!r}
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
