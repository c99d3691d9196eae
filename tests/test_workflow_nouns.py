"""The noun stage run through Snakemake: outputs, metadata, and what a config change reruns."""

import json

import pyarrow.parquet as pq
import pytest
import yaml
from project import noun_targets, snakemake

from novic.dictionary import NOUN_SCHEMA, read_nouns
from novic.forms import canonical
from novic.io import read_metadata
from novic.nouns import noun_multiplicities

pytestmark = pytest.mark.slow


def test_dictionary_outputs(noun_project):
    path = noun_project / "results/nouns/dictionary.parquet"
    table = read_nouns(path)
    assert pq.read_schema(path).remove_metadata() == NOUN_SCHEMA.remove_metadata()
    meta = read_metadata(path)
    assert meta["novic.artifact"] == "dictionary"
    assert meta["novic.wordnet_version"] == "3.0"
    assert len(meta["novic.content_sha256"]) == 64
    rows = table.to_pylist()
    assert len(rows) > 1000
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    targets = [r["target_noun"] for r in rows]
    assert len(set(targets)) == len(targets)
    by_target = {r["target_noun"]: r for r in rows}
    # tests/config.yaml selects the animal and food lexnames
    assert "dog" in by_target and "apple" in by_target
    assert "mice" in by_target["mouse"]["plurals"]
    assert "dogs" in by_target["dog"]["plurals"]
    assert by_target["deer"]["plurals"] == ["deer"]  # the plural equals the singular
    assert "sheep" in by_target["sheep"]["plurals"]
    assert by_target["doe"]["plurals"] == []  # "does" is the verb's
    assert by_target["pea"]["plurals"] == ["peas"]  # not WordNet's "pease"
    assert "hammer" not in by_target  # an artifact
    owners: dict[str, set[str]] = {}
    for row in rows:
        target = row["target_noun"]
        assert canonical(target) == target
        forms = row["singulars"] + row["plurals"]
        assert forms and target in {canonical(form) for form in forms}
        # merged spelling variants ("hotdog" of "hot dog") and plurals keep their own forms
        for form in forms:
            if form[:1].islower():  # a proper name ("Fungi") may share a common noun's form
                owners.setdefault(canonical(form), set()).add(target)
        assert len(row["singulars_freq"]) == len(row["singulars"])
        assert len(row["plurals_freq"]) == len(row["plurals"])
        assert min(row["singulars_freq"] + row["plurals_freq"]) >= 1
        total = sum(row["singulars_freq"]) + sum(row["plurals_freq"])
        assert 0 <= row["organic_multiplicity"] <= total  # the floor only lifts
    lifted = [  # CIFAR-10's animals that the floor raised
        noun
        for noun in ("bird", "cat", "deer", "dog", "frog", "horse")
        if by_target[noun]["organic_multiplicity"]
        < sum(by_target[noun]["singulars_freq"] + by_target[noun]["plurals_freq"])
    ]
    assert lifted
    # every form names one noun: one prompt never trains two targets
    assert {form: t for form, t in owners.items() if len(t) > 1} == {}
    stats = json.loads((noun_project / "results/nouns/dictionary.stats.json").read_text())
    assert stats["nouns"] == len(rows)


def test_vocabularies_are_nested_subsets(noun_project):
    dictionary = read_nouns(noun_project / "results/nouns/dictionary.parquet")
    ids = {}
    for threshold in (9, 12):
        path = noun_project / f"results/vocab/ft{threshold}.parquet"
        vocab = read_nouns(path)
        assert all(m > threshold for m in noun_multiplicities(vocab))
        meta = read_metadata(path)
        assert meta["novic.threshold"] == str(threshold)
        assert (
            meta["novic.dictionary_sha256"]
            == read_metadata(noun_project / "results/nouns/dictionary.parquet")[
                "novic.content_sha256"
            ]
        )
        stats = json.loads((noun_project / f"results/vocab/ft{threshold}.stats.json").read_text())
        assert stats["nouns"] == vocab.num_rows > 0
        coverage = stats["coverage"]
        assert set(coverage) == {
            "resources/class_names/cifar10.txt",
            "resources/class_names/cub200.txt",
        }
        for entry in coverage.values():
            assert 0 <= entry["organic"] <= entry["floored"] <= 1
        assert coverage["resources/class_names/cub200.txt"]["classes"] == 200
        ids[threshold] = set(vocab.column("id").to_pylist())
    all_ids = dictionary.column("id").to_pylist()
    multiplicities = noun_multiplicities(dictionary)
    expected = {i for i, m in zip(all_ids, multiplicities, strict=True) if m > 9}
    assert ids[9] == expected
    assert ids[12] < ids[9]


def test_changing_thresholds_rebuilds_only_vocabularies(noun_project):
    # the noun stage's outputs are up to date
    assert snakemake(noun_project, noun_targets((9, 12)), dryrun=True) == []
    override = noun_project / "thresholds.yaml"
    override.write_text(yaml.safe_dump({"vocab": {"thresholds": [6, 9]}}))
    configs = ["tests/config.yaml", "thresholds.yaml"]
    updated = snakemake(noun_project, noun_targets((6, 9)), configfiles=configs, dryrun=True)
    assert set(updated) == {"results/vocab/ft6.parquet", "results/vocab/ft6.stats.json"}


def test_changing_the_rules_rebuilds_the_dictionary(noun_project):
    override = noun_project / "rules.yaml"
    override.write_text(yaml.safe_dump({"nouns": {"lexnames": ["animal", "food", "plant"]}}))
    updated = snakemake(noun_project, configfiles=["tests/config.yaml", "rules.yaml"], dryrun=True)
    assert "results/nouns/dictionary.parquet" in updated
    assert "results/vocab/ft9.parquet" in updated


def test_unknown_synset_in_rules_names_file_and_line(noun_project, tmp_path):
    rules = noun_project / "resources/bad_rules.txt"
    rules.write_text("N feeling.n.01\nY no_such_thing.n.01\n")
    override = noun_project / "bad_rules.yaml"
    override.write_text(yaml.safe_dump({"nouns": {"rules": "resources/bad_rules.txt"}}))
    with pytest.raises(Exception):  # noqa: B017 (Snakemake wraps the job failure)
        snakemake(
            noun_project,
            ["results/nouns/dictionary.parquet"],
            configfiles=["tests/config.yaml", "bad_rules.yaml"],
        )
    log = (noun_project / "results/logs/extract_nouns.log").read_text()
    assert "resources/bad_rules.txt:2: unknown synset no_such_thing.n.01" in log
