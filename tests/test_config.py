"""The configuration: the schema as the one source of defaults, cross-key checks that name
the bad key before any job runs, and what the default target builds."""

import copy
import dataclasses
import os
import re
import subprocess
import sys

import pytest
import yaml
from project import REPO, copy_project, override_files, snakemake
from snakemake.utils import update_config

from novic.config import ConfigError, validate_config
from novic.schema import defaults, runtime_keys, runtime_values, section_schema, without_runtime
from novic.settings import SETTINGS, FilterSettings, RequestSettings, TrainSettings

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


# --- one source of defaults ---------------------------------------------------------------------


def catalog(sub: dict) -> bool:
    return isinstance(sub.get("additionalProperties"), dict) and "properties" not in sub


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_settings_defaults_are_the_schemas(cls):
    """Each settings object's defaults equal the schema-filled config, and it has a field for
    every key of its section but the runtime-only ones, nested catalogs and nested sections with
    their own settings object (eval.annotate)."""
    expected = defaults(cls.SECTION)
    section = section_schema(cls.SECTION)["properties"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert value == expected[f.name], (cls.__name__, f.name)
        else:
            assert "default" not in section.get(f.name, {}), (cls.__name__, f.name)
    wanted = {k for k, sub in section.items() if not catalog(sub)}
    wanted -= runtime_keys(cls.SECTION) - {"batch_size"}  # EvalSettings carries its batch size
    wanted -= {k for k in section if any(f"{cls.SECTION}.{k}" == s.SECTION for s in SETTINGS)}
    assert wanted <= {f.name for f in dataclasses.fields(cls)}, cls.__name__


def test_library_defaults_match_the_pipeline():
    """The two values that had drifted between library and schema."""
    filled = validate_config({})
    assert FilterSettings().min_length == filled["captions"]["filter"]["min_length"] == 10
    assert RequestSettings().concurrency == filled["captions"]["requests"]["concurrency"] == 8
    assert TrainSettings().batch_size * TrainSettings().accum == 8192  # the paper's batch


def test_no_settings_class_restates_a_default():
    """Defaults are written in the schema only: no field of a settings class has a literal."""
    source = (REPO / "novic/settings.py").read_text()
    assert not re.findall(r"^    \w+: [\w |\[\],]+ = ", source, flags=re.M)


def test_runtime_keys_are_marked_in_the_schema():
    assert runtime_keys("embeddings") == {"batch_size", "chunk_rows", "row_group_rows", "cache_dir"}
    assert runtime_keys("runs.*.train") == {"checkpoint_every", "compile", "prefetch_batches"}
    assert runtime_keys("eval") == {"batch_size"}
    config = validate_config({})
    assert "requests" not in without_runtime(config["captions"], "captions")
    assert runtime_values(config["captions"]["requests"], "captions.requests")["timeout"] == 120


# --- cross-key checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"build": {"runs": ["nope"]}}, r"build\.runs: 'nope' is not an entry of runs"),
        ({"build": {"benchmarks": ["x"]}}, r"build\.benchmarks: 'x' is not an entry of eval"),
        ({"captions": {"llm": "gpt9"}}, r"captions\.llm: 'gpt9' is not an entry"),
        (
            {"captions": {"llms": {"x": {"backend": "openai-compatible", "model": "m"}}}},
            r"captions\.llms\.x\.base_url: required",
        ),
        ({"captions": {"generate": {"prompt": "{nonsense}"}}}, r"captions\.generate\.prompt"),
        (
            {"captions": {"sample": {"template_multiplier": 5, "sample_multiplier": 2}}},
            r"captions\.sample\.sample_multiplier \(2\) must be >= template_multiplier",
        ),
        ({"runs": {"r": {"embedder": "tiny", "threshold": 2, "mix": {"m1": 1},
                         "model": {"hidden": 30, "heads": 4}}}}, r"runs\.r\.model\.heads"),
        ({"eval": {"class_gencfg": "greedy_k3_vnone_gp_t1_a0"}}, r"eval\.class_gencfg: .*k must"),
    ],
)  # fmt: skip
def test_cross_key_rules_name_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_a_missing_dataset_folder_names_the_key_and_the_layout(tmp_path):
    config = {
        "build": {"benchmarks": ["cifar10"]},
        "eval": {"benchmarks": {"cifar10": {"kind": "cifar10", "root": str(tmp_path / "no")}}},
    }
    with pytest.raises(ConfigError, match=r"eval\.benchmarks\.cifar10\.root: .*cifar-10-batches"):
        validate_config(config)
    (tmp_path / "no").mkdir()
    validate_config(config)
    # a benchmark nobody selects needs no data
    validate_config({"eval": {"benchmarks": {"c": {"kind": "cifar10", "root": "/nowhere"}}}})


# --- what rule all builds -------------------------------------------------------------------------


def dry_run_files(workdir, *configfiles: str) -> set[str]:
    return set(snakemake(workdir, configfiles=configfiles, dryrun=True))


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("build"))


def test_with_evaluation_off_the_default_target_still_trains(project_copy):
    files = override_files(project_copy, {"build": {"evaluate": False}})
    updated = dry_run_files(project_copy, *files)
    assert {
        "results/models/tiny_ft9/decoder.pt",
        "results/models/tiny_ft9/metrics.jsonl",
    } <= updated
    assert not any(p.startswith(("results/eval/", "results/report/")) for p in updated)


def test_a_preset_builds_what_it_names_and_nothing_else(project_copy):
    (project_copy / "mine.yaml").write_text(
        yaml.safe_dump(
            {
                "build": {"runs": ["mine"], "benchmarks": ["sample_photos"]},
                "vocab": {"thresholds": [12]},
                "prompts": {"shards": 1, "fraction": 0.01},
                "runs": {"mine": {"embedder": "tiny", "threshold": 12, "mix": {"m2": 1}}},
            }
        )
    )
    updated = dry_run_files(project_copy, "mine.yaml")  # over config.yaml, as a user would
    runs = {p.split("/")[2] for p in updated if p.startswith(("results/models/", "results/eval/"))}
    assert runs == {"mine"}
    assert {p for p in updated if p.startswith("results/eval/")} == {
        "results/eval/mine/sample_photos.json",
        "results/eval/mine/sample_photos.predictions.json",
        "results/eval/mine/sample_photos.samples.png",
        "results/eval/mine/text.json",
    }
    assert {p for p in updated if p.startswith("results/vocab/")} == {
        "results/vocab/ft12.parquet",
        "results/vocab/ft12.stats.json",
    }
    assert {p.split("/")[3] for p in updated if p.startswith("results/prompts/")} == {"m2"}
    assert not any(p.startswith("results/captions/") or "siglip" in p for p in updated)


def test_the_default_config_dry_runs_without_an_api_key(project_copy):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "generate_captions" in result.stdout and "OPENAI_API_KEY" not in result.stdout


def test_the_paper_benchmarks_are_in_the_catalog_and_need_their_data(tmp_path):
    paper = ["imagenet1k", "cifar10", "cifar100", "food101", "tinyimagenet", "imagenette",
             "imagewoof", "imagenet_a", "imagenet_r", "world", "wiki", "val3k"]  # fmt: skip
    config = {"build": {"benchmarks": paper}}
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    for name in paper:
        root = "data/cifar" if name.startswith("cifar") else f"data/{name}"
        assert f"eval.benchmarks.{name}.root: folder {root} does not exist" in message
    assert "eval.benchmarks.world.annotations: file data/world/annotations.json" in message
    assert "kind imagenet1k: expected ILSVRC2012 in ROOT" in message
    assert "kind tinyimagenet: expected ROOT[/tiny-imagenet-200]/ with wnids.txt" in message
    assert "kind imagenet_r: expected ROOT[/imagenet-r]/{wnid}/*.jpg" in message


def test_a_missing_dataset_stops_the_dry_run_with_the_key(project_copy):
    selected = ["food101", "imagenet1k", "imagenet_a", "tinyimagenet", "world"]
    files = override_files(project_copy, {"build": {"benchmarks": selected}})
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", *files],
        cwd=project_copy,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "eval.benchmarks.food101.root: folder data/food101 does not exist" in output
    assert "food-101/{images,meta}" in output  # the expected layout
    for name in selected[1:]:  # the paper's benchmarks, all reported at once
        assert f"eval.benchmarks.{name}.root: folder data/{name} does not exist" in output
    assert "LOC_val_solution.csv" in output and "val/val_annotations.txt" in output


def test_no_script_reads_the_config():
    scripts = sorted((REPO / "workflow/scripts").glob("*.py"))
    assert scripts
    for path in scripts:
        assert "snakemake.config" not in path.read_text(), path.name
        assert "start(snakemake" in path.read_text(), f"{path.name} skips novic.jobs.start"


def test_default_catalog_entries_merge_like_config_files():
    config = validate_config(
        {
            "embedders": {"mine": {"arch": "ViT-B-16-SigLIP", "checkpoint": "/w/model.bin"}},
            "eval": {"benchmarks": {"fashion_mnist": {"limit": 40}}},
        }
    )
    assert set(config["embedders"]) == {"mine", "siglip_b16", "tiny", "minilm", "fmnist_minilm"}
    fashion = config["eval"]["benchmarks"]["fashion_mnist"]
    assert fashion["limit"] == 40 and fashion["kind"] == "fashion_mnist"  # the rest is kept
    assert config["captions"]["llms"]["gpt35"]["model"] == "gpt-3.5-turbo-1106"


# --- hostile or clumsy configs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"nouns": {"rules": "no/rules.txt"}}, r"nouns\.rules: synset rules file no/rules\.txt"),
        ({"nouns": {"class_lists": ["resources/class_names/cifar10.txt", "x.txt"]}},
         r"nouns\.class_lists\[1\]: class list x\.txt does not exist"),
        ({"nouns": {"general_lists": ["g.txt"]}},
         r"nouns\.general_lists\[0\]: class list g\.txt does not exist"),
        ({"nouns": {"source": {"kind": "reference"}}},
         r"nouns\.source\.path: kind reference needs the path .* never downloaded"),
        ({"nouns": {"source": {"kind": "reference", "path": "object_nouns.json"}}},
         r"nouns\.source\.path: noun dictionary object_nouns\.json does not exist"),
        ({"prompts": {"templates": "t.tsv"}}, r"prompts\.templates: templates file t\.tsv"),
        ({"build": {"benchmarks": ["sample_photos"]},
          "eval": {"benchmarks": {"sample_photos": {"annotations": "a.json"}}}},
         r"eval\.benchmarks\.sample_photos\.annotations: file a\.json does not exist"),
        ({"build": {"runs": ["r"]}, "embedders": {"w": {"arch": "ViT-B-32", "checkpoint": "w.pt"}},
          "runs": {"r": {"embedder": "w", "threshold": 2, "mix": {"m1": 1}}}},
         r"embedders\.w\.checkpoint: weights file w\.pt does not exist"),
        ({"prompts": {"shards": 20000}}, r"prompts\.shards: 20000 is greater than the maximum"),
        ({"prompts": {"multiset_freq": [1, 10**6]}}, r"prompts\.multiset_freq\[1\]: .* maximum"),
    ],
)  # fmt: skip
def test_missing_files_and_huge_values_stop_before_any_job(config, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_a_yaml_alias_bomb_is_refused_quickly():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    config = yaml.safe_load("\n".join(levels) + "\nvocab: {thresholds: *i}\n")  # 10^9 values
    with pytest.raises(ConfigError, match=r"more than 200,000 values"):
        validate_config(config)
