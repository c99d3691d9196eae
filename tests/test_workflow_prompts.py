"""Workflow tests of rule make_prompts: a real run on the test vocabularies, then dry runs that
check what a change of seed, templates or multiset frequency re-runs."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from project import REPO, TEST_CONFIG, merged_config, override_files, snakemake

from novic.dictionary import nouns_fingerprint, read_nouns
from novic.io import read_metadata
from novic.prompts import load_templates, split_heldout, template_totals
from novic.textdata import shard_name, text_num_rows

pytestmark = pytest.mark.slow


CONFIG = merged_config(REPO / TEST_CONFIG)
PROMPTS = CONFIG["prompts"]
THRESHOLDS = CONFIG["vocab"]["thresholds"]
MULTISETS = [m for m, freq in enumerate(PROMPTS["multiset_freq"], 1) if freq]


def outputs(threshold: int, m: int) -> list[str]:
    folder = f"results/prompts/ft{threshold}/m{m}"
    names = [shard_name(k) for k in range(PROMPTS["shards"])]
    return [f"{folder}/{name}" for name in [*names, "heldout.parquet", "stats.json"]]


ALL_OUTPUTS = [f for t in THRESHOLDS for m in MULTISETS for f in outputs(t, m)]


def dry_run(workdir: Path, *overrides: dict) -> set[str]:
    files = override_files(workdir, *overrides)
    return set(snakemake(workdir, ALL_OUTPUTS, configfiles=files, dryrun=True))


@pytest.fixture(scope="module")
def project(noun_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the noun stage's project in which the prompts have been made once."""
    workdir = tmp_path_factory.mktemp("prompts")
    shutil.copytree(noun_project, workdir, dirs_exist_ok=True)
    snakemake(workdir, ALL_OUTPUTS)
    return workdir


def test_outputs_follow_the_vocabulary(project: Path) -> None:
    templates = load_templates(project / PROMPTS["templates"], PROMPTS["collections"])
    train, held = split_heldout(templates, PROMPTS["heldout"])
    weights = {n: template_totals(train, n)[1] for n in ("singular", "plural")}
    fraction = PROMPTS["fraction"]
    for threshold in THRESHOLDS:
        vocab = project / f"results/vocab/ft{threshold}.parquet"
        nouns = read_nouns(vocab)
        sums = {n: sum(map(sum, nouns.column(f"{n}s_freq").to_pylist())) for n in weights}
        # each template instance keeps ceil(fraction x its rows); all of them when fraction = 1
        expected = sum(weights[n] * math.ceil(fraction * sums[n]) for n in weights)
        assert expected > 0
        for m in MULTISETS:
            *shards, heldout, _ = (project / f for f in outputs(threshold, m))
            assert text_num_rows(shards) == expected
            assert 0 < text_num_rows(heldout) <= PROMPTS["heldout_rows"]
            for path in [*shards, heldout]:
                meta = read_metadata(path)
                assert meta["novic.vocab_sha256"] == nouns_fingerprint(vocab)
                assert (meta["novic.threshold"], meta["novic.multiset"]) == (str(threshold), str(m))
            targets = pq.read_table(shards[0], columns=["targets"]).column("targets")
            assert targets.type.list_size == 3
    assert held, "tests/config.yaml should hold a template out"
    log = project / f"results/logs/make_prompts/ft{THRESHOLDS[0]}_m1.log"
    assert "rows/s" in log.read_text()


def test_nothing_left_to_do(project: Path) -> None:
    assert dry_run(project) == set()


def test_seed_change_reruns_the_prompts_not_the_vocabulary(project: Path) -> None:
    updated = dry_run(project, {"prompts": {"seed": PROMPTS["seed"] + 1}})
    assert updated == set(ALL_OUTPUTS)


def test_frequency_of_one_m_reruns_only_that_m(project: Path) -> None:
    freq = list(PROMPTS["multiset_freq"])
    freq[-1] += 1
    updated = dry_run(project, {"prompts": {"multiset_freq": freq}})
    assert updated == {f for t in THRESHOLDS for f in outputs(t, len(freq))}


def test_template_edit_reruns_the_prompts_not_the_vocabulary(project: Path) -> None:
    templates = project / PROMPTS["templates"]
    before = templates.read_text()
    stat = templates.stat()
    try:
        templates.write_text(before + "imagenet\t1\ta photo of a wet {singular}.\n")
        assert dry_run(project) == set(ALL_OUTPUTS)
    finally:
        templates.write_text(before)
        os.utime(templates, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert dry_run(project) == set()
