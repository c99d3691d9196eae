"""Workflow tests of the embedding stage: a real run of the test run's mix with the tiny CLIP,
then dry runs that check what a change re-runs and that bad runs stop before any job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from project import REPO, TEST_CONFIG, merged_config, override_files, snakemake

from novic.embedders import load_embedder
from novic.io import read_metadata
from novic.loader import EmbeddingLoader
from novic.mix import read_mix
from novic.shards import fixed_list_numpy, shard_permutation

pytestmark = pytest.mark.slow


CONFIG = merged_config(REPO / TEST_CONFIG)
RUN = CONFIG["build"]["runs"][0]
SETTINGS = CONFIG["runs"][RUN]
EMBEDDER, THRESHOLD = SETTINGS["embedder"], SETTINGS["threshold"]
SOURCES = [s for s, w in SETTINGS["mix"].items() if w > 0]
PARTS = [f"part-{k:04d}" for k in range(CONFIG["prompts"]["shards"])]
SHARDS = [
    f"results/embeddings/{EMBEDDER}/prompts/ft{THRESHOLD}/{s}/{p}.parquet"
    for s in SOURCES
    for p in [*PARTS, "heldout"]
]
MIX = f"results/models/{RUN}/mix.json"
INFO = f"results/embedders/{EMBEDDER}.json"


def dry_run(workdir: Path, *overrides: dict, targets: list[str] | None = None) -> set:
    files = override_files(workdir, *overrides)
    return set(snakemake(workdir, targets or [MIX], configfiles=files, dryrun=True))


@pytest.fixture(scope="module")
def project(noun_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the noun stage's project in which the test run's mix has been built once."""
    assert "captions" not in SOURCES, "the test run should not start the LLM"
    workdir = tmp_path_factory.mktemp("embeddings")
    shutil.copytree(noun_project, workdir, dirs_exist_ok=True)
    snakemake(workdir, [MIX])
    return workdir


def test_mix_lists_checked_shards_of_the_run(project: Path) -> None:
    vocab = project / f"results/vocab/ft{THRESHOLD}.parquet"
    info = json.loads((project / INFO).read_text())
    mix = read_mix(project / MIX, vocab=vocab, embedder_sha256=info["sha256"])
    assert [s.name for s in mix.sources] == SOURCES
    assert (mix.embedder, mix.dim, mix.dtype) == (
        EMBEDDER,
        info["dim"],
        CONFIG["embeddings"]["dtype"],
    )
    for source in mix.sources:
        texts = [
            project / f"results/prompts/ft{THRESHOLD}/{source.name}/{p}.parquet" for p in PARTS
        ]
        assert [s.rows for s in source.shards] == [pq.read_metadata(t).num_rows for t in texts]
        assert source.weight == SETTINGS["mix"][source.name]
    assert sorted(mix.heldout) == sorted(SOURCES)
    row_group = CONFIG["embeddings"]["row_group_rows"]
    meta = pq.read_metadata(project / SHARDS[0])
    assert meta.row_group(0).num_rows == min(row_group, meta.num_rows)


def test_shard_holds_the_embedded_texts_shuffled(project: Path) -> None:
    shard = project / SHARDS[0]
    meta = read_metadata(shard)
    source = pq.read_table(project / "results" / f"{meta['novic.source']}.parquet")
    order = shard_permutation(source.num_rows, CONFIG["embeddings"]["seed"], meta["novic.source"])
    embedder = load_embedder(CONFIG["embedders"][EMBEDDER])
    expected = embedder.encode_texts(source.column("text").take(order).to_pylist())
    table = pq.read_table(shard)
    got = fixed_list_numpy(table.column("embedding"), embedder.dim).astype(np.float32)
    assert np.abs(got - expected).max() < 2e-3
    np.testing.assert_array_equal(
        fixed_list_numpy(table.column("targets"), 3),
        fixed_list_numpy(source.column("targets"), 3)[order],
    )
    log = project / f"results/logs/embeddings/{EMBEDDER}/{meta['novic.source']}.log"
    assert "on cpu (truncated context)" in log.read_text()
    assert "rows/s, ETA" in log.read_text()
    assert (
        project / f"results/benchmarks/embeddings/{EMBEDDER}/{meta['novic.source']}.tsv"
    ).exists()


def test_loader_streams_the_whole_mix(project: Path) -> None:
    mix = read_mix(project / MIX)
    loader = EmbeddingLoader(mix, batch_size=32, buffer_rows=100, drop_last=False)
    batches = list(loader.epoch(0))
    assert sum(len(b.embedding) for b in batches) == mix.epoch_rows == loader.rows_per_epoch
    assert batches[0].embedding.shape[1] == mix.dim


def test_nothing_left_to_do(project: Path) -> None:
    assert dry_run(project) == set()


def test_mix_weight_change_rewrites_only_the_manifest(project: Path) -> None:
    override = {"runs": {RUN: {"mix": {SOURCES[0]: 2}}}}
    assert dry_run(project, override) == {MIX}


def test_speed_knobs_rerun_nothing(project: Path) -> None:
    knobs = {"batch_size": 7, "chunk_rows": 5, "cache_dir": "/elsewhere"}
    assert dry_run(project, {"embeddings": knobs}) == set()


def test_dtype_change_reembeds_but_keeps_texts_and_embedder(project: Path) -> None:
    assert dry_run(project, {"embeddings": {"dtype": "float32"}}) == {*SHARDS, MIX}


def test_embedder_change_reprepares_and_reembeds(project: Path) -> None:
    override = {"embedders": {EMBEDDER: {"tiny": {"seed": 1}}}}
    assert dry_run(project, override) == {INFO, *SHARDS, MIX}


def test_second_run_shares_the_embeddings(project: Path) -> None:
    run = {"embedder": EMBEDDER, "threshold": THRESHOLD, "mix": {SOURCES[-1]: 0.5}}
    other = "results/models/other/mix.json"
    assert dry_run(project, {"runs": {"other": run}}, targets=[MIX, other]) == {other}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"runs": {RUN: {"embedder": "nope"}}}, r"runs\.\S+\.embedder: 'nope' is not an entry"),
        ({"runs": {RUN: {"threshold": 3}}}, rf"runs\.{RUN}\.threshold: 3 is not in vocab"),
        (
            {"embedders": {"bad": {"hub": "a/b", "arch": "ViT-B-32"}}},
            r"embedders\.bad: .* not an embedder",
        ),
        ({"runs": {RUN: {"mix": {"m4": 1}}}}, r"runs\.\S+\.mix\.m4: unknown key"),
    ],
)
def test_bad_runs_stop_before_any_job(project: Path, override: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        dry_run(project, override)
