"""The config schema: defaults, and errors that name the bad key before any job runs."""

import copy
import subprocess
import sys

import pytest
import yaml
from project import REPO, copy_project
from snakemake.utils import update_config

from novic.config import ConfigError, validate_config

SCHEMA = REPO / "novic/config.schema.yaml"


def test_defaults_fill_an_empty_config():
    config = validate_config({}, SCHEMA)
    assert config["nouns"]["wordnet"]["source"] == "auto"
    assert config["nouns"]["lexnames"][:2] == ["animal", "artifact"]
    assert len(config["nouns"]["lexnames"]) == 11
    assert config["vocab"]["thresholds"] == [2]


@pytest.mark.parametrize("name", ["presets/quickstart.yaml", "tests/config.yaml"])
def test_shipped_configs_are_valid(name):
    # Snakemake loads config.yaml, then merges a --configfile over it
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(copy.deepcopy(config), SCHEMA)
    update_config(config, yaml.safe_load((REPO / name).read_text()))
    validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"nouns": {"lexicon": []}}, "nouns.lexicon: unknown key"),
        ({"vocabulary": {}}, "vocabulary: unknown key"),
        ({"vocab": {"thresholds": [2, -1]}}, r"vocab.thresholds\[1\]: -1 is less than the minimum"),
        ({"vocab": {"thresholds": "2"}}, "vocab.thresholds: '2' is not of type 'array'"),
        ({"nouns": {"lexnames": ["animal", "cars"]}}, r"nouns.lexnames\[1\]: 'cars' is not one of"),
        ({"nouns": {"wordnet": {"source": "web"}}}, "nouns.wordnet.source: 'web' is not one of"),
        ({"nouns": {"phrase_penalty": 0.5}}, "nouns.phrase_penalty: 0.5 is less than"),
    ],
)
def test_bad_values_name_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        validate_config({"vocab": {"thresholds": [-1], "extra": 1}}, SCHEMA)
    assert "vocab.extra: unknown key" in str(error.value)
    assert "vocab.thresholds[0]" in str(error.value)


def test_snakemake_stops_before_any_job(tmp_path):
    workdir = copy_project(tmp_path)
    (workdir / "bad.yaml").write_text("vocab:\n  thresholds: [two]\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "bad.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "vocab.thresholds[0]: 'two' is not of type 'integer'" in result.stdout + result.stderr
    assert not (workdir / "results").exists()
