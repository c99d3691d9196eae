"""The whole-vocabulary zero-shot baseline (novic.baseline): nearest nouns on hand-made
embeddings and their scores, the noun-embedding cache of the tiny CLIP and its checks, and the
baseline inside an image benchmark's evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from test_evaluate import make_folder
from tiny_decoder import NOUNS, write_tiny_decoder

from novic.baseline import (
    ARTIFACT,
    VocabEmbeddings,
    embed_vocab_nouns,
    nearest_nouns,
    read_vocab_embeddings,
)
from novic.dictionary import META_CONTENT, META_THRESHOLD, noun_row, noun_table
from novic.embedders import Embedder
from novic.evaluate import _free_scores, class_embeddings, evaluate_images, prompt_templates
from novic.io import write_parquet
from novic.settings import BenchmarkSettings, EvalSettings
from novic.shards import CacheMismatchError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")


def unit(rows: list[list[float]]) -> np.ndarray:
    a = np.array(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def hand_made() -> VocabEmbeddings:
    """Four nouns in 3-d: three on the axes, "kitten" between cat (x) and dog (y)."""
    emb = unit([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    nouns = ["cat", "dog", "car", "kitten"]
    return VocabEmbeddings(np.arange(1, 5), nouns, emb, {})


def test_nearest_nouns_are_ordered_by_cosine() -> None:
    vocab = hand_made()
    images = unit([[0.9, 0.1, 0.0], [0.1, 0.2, 1.0], [1.0, 0.8, 0.0], [0.0, 1.0, 0.0]])
    top = nearest_nouns(images, vocab, k=3)
    assert top[0] == ["cat", "kitten", "dog"]
    assert top[1] == ["car", "kitten", "dog"]
    assert top[2] == ["kitten", "cat", "dog"]
    assert top[3][:2] == ["dog", "kitten"]
    # the search in blocks of rows gives the same answers; k is capped at the nouns
    assert nearest_nouns(images, vocab, k=3, rows=1) == top
    assert [len(t) for t in nearest_nouns(images, vocab, k=10)] == [4] * 4
    with pytest.raises(ValueError, match="do not match the 3-d noun embeddings"):
        nearest_nouns(np.ones((2, 4), np.float32), vocab)


def test_nearest_nouns_are_scored_like_free_predictions() -> None:
    """Exact match against each image's class set: a cat image answered "kitten" first is
    right at top-1 only if kitten is in the class's set."""
    vocab = hand_made()
    images = unit([[1.0, 0.1, 0.0], [1.0, 0.8, 0.0], [0.0, 0.1, 1.0], [0.1, 1.0, 0.0]])
    classes = [["cat"], ["dog"], ["car"]]
    labels = np.array([0, 0, 2, 1])
    sets = [{"cat"}, {"cat"}, {"car"}, {"dog"}]
    names = nearest_nouns(images, vocab, k=5)
    settings = EvalSettings(semantic=False)
    scores = _free_scores(names, sets, classes, labels, settings, {}, "s")
    assert scores == {"top1": 0.75, "top5": 1.0}  # the second cat image says kitten first
    sets[1] = {"cat", "kitten"}
    assert _free_scores(names, sets, classes, labels, settings, {}, "s")["top1"] == 1.0


def write_vocab(path: Path, nouns: list[str] = NOUNS) -> Path:
    """A vocabulary of `nouns` (ids 1..N) with the metadata of a built one."""
    rows = [noun_row(i, [n], [n + "s"], pretty=n.capitalize()) for i, n in enumerate(nouns, 1)]
    write_parquet(
        noun_table(rows), path, {META_CONTENT: f"sha-of-{len(nouns)}", META_THRESHOLD: "9"}
    )
    return path


def test_cache_holds_one_unit_embedding_per_noun(tiny: Embedder, tmp_path: Path) -> None:
    vocab = write_vocab(tmp_path / "ft9.parquet", ["cat", "ankle boot", "dog"])
    out = tmp_path / "cache" / "cifar.parquet"
    stats = embed_vocab_nouns(vocab, out, tiny, "tiny", "cifar", batch_size=16)
    assert stats["rows"] == 3 and stats["templates"] == len(prompt_templates("cifar"))
    table = pq.read_table(out)
    assert table.column_names == ["id", "target_noun", "embedding"]
    assert table.column("target_noun").to_pylist() == ["cat", "ankle boot", "dog"]
    cache = read_vocab_embeddings(out)
    assert cache.ids.tolist() == [1, 2, 3] and cache.nouns[1] == "ankle boot"
    assert np.allclose(np.linalg.norm(cache.embeddings, axis=1), 1, atol=1e-5)
    # the class-list zero-shot's vectors of the display names (the same prompt ensemble)
    expected = class_embeddings(tiny, [["Cat"], ["Ankle boot"], ["Dog"]], "cifar")
    assert np.allclose(cache.embeddings, expected, atol=1e-5)
    meta = cache.meta
    assert meta["novic.artifact"] == ARTIFACT and meta["novic.embedder"] == "tiny"
    assert meta["novic.embedder_sha256"] == tiny.sha256 and meta["novic.dim"] == str(tiny.dim)
    assert meta["novic.vocab_sha256"] == "sha-of-3" and meta["novic.threshold"] == "9"
    assert meta["novic.prompts"] == "cifar" and meta["novic.device"] == "cpu"
    assert json.loads(meta["novic.templates"]) == prompt_templates("cifar")
    assert cache.embed_seconds >= 0 and not list(out.parent.glob(".*.tmp"))


def test_cache_refuses_other_runs_and_other_files(tiny: Embedder, tmp_path: Path) -> None:
    vocab = write_vocab(tmp_path / "ft9.parquet", ["cat", "dog"])
    out = tmp_path / "simple.parquet"
    embed_vocab_nouns(vocab, out, tiny, "tiny", "simple")
    read_vocab_embeddings(out, {"novic.vocab_sha256": "sha-of-2", "novic.embedder_sha256": None})
    with pytest.raises(CacheMismatchError, match=r"simple\.parquet: novic\.vocab_sha256 is"):
        read_vocab_embeddings(out, {"novic.vocab_sha256": "another"})
    with pytest.raises(CacheMismatchError, match="not a vocabulary embedding cache"):
        read_vocab_embeddings(vocab)
    with pytest.raises(ValueError, match="unknown prompt set 'nope'"):
        embed_vocab_nouns(vocab, out, tiny, "tiny", "nope")
    pq.write_table(noun_table([]), tmp_path / "empty.parquet")
    with pytest.raises(ValueError, match=r"empty\.parquet: the vocabulary has no nouns"):
        embed_vocab_nouns(tmp_path / "empty.parquet", out, tiny, "tiny", "simple")


def test_image_benchmark_scores_the_baseline_beside_free_predictions(
    tiny: Embedder, tmp_path: Path
) -> None:
    """The whole_vocab block is what its predictions say: recount top-1 from the JSON."""
    from test_evaluate import write_dictionary

    model = write_tiny_decoder(tmp_path / "decoder.pt")
    dictionary = write_dictionary(tmp_path / "dictionary.parquet")
    cache = tmp_path / "cifar.parquet"
    embed_vocab_nouns(write_vocab(tmp_path / "ft9.parquet"), cache, tiny, "tiny", "cifar")
    bench = BenchmarkSettings("toy", "folder", str(make_folder(tmp_path / "data")), prompts="cifar")
    settings = EvalSettings(semantic=False, batch_size=8)
    paths = (tmp_path / "m.json", tmp_path / "p.json")
    metrics = evaluate_images(
        model, bench, settings, dictionary, CPU, *paths, embedder=tiny, vocab_embeddings=cache
    )
    wv = metrics["whole_vocab"]
    assert wv["nouns"] == len(NOUNS) and wv["prompts"] == "cifar" and wv["templates"] == 18
    assert 0 <= wv["top1"] <= wv["top5"] <= 1
    assert {"embed_nouns_s", "search_s", "ms_per_image", "decoder_ms_per_image"} <= set(
        wv["timings"]
    )
    samples = json.loads(paths[1].read_text())["samples"]
    assert all(len(s["whole_vocab"]) == 5 and set(s["whole_vocab"]) <= set(NOUNS) for s in samples)
    right = [s["whole_vocab"][0] == s["label"] for s in samples]  # dustcart: never right
    assert wv["top1"] == pytest.approx(np.mean(right))
    off = evaluate_images(
        model, bench, EvalSettings(semantic=False, whole_vocab=False), dictionary, CPU, *paths,
        embedder=tiny, vocab_embeddings=cache,
    )  # fmt: skip
    assert "whole_vocab" not in off
    other = tmp_path / "simple.parquet"
    embed_vocab_nouns(write_vocab(tmp_path / "ft9.parquet"), other, tiny, "tiny", "simple")
    with pytest.raises(CacheMismatchError, match=r"novic\.prompts is 'simple'"):
        evaluate_images(
            model, bench, settings, dictionary, CPU, *paths, embedder=tiny, vocab_embeddings=other
        )
