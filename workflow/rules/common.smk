from pathlib import Path

from novic.config import validate_config
from novic.textdata import shard_name

validate_config(
    config, Path(workflow.current_basedir).parent / "schemas/config.schema.yaml"
)


# --- Nouns ---


def vocab_files():
    """Every thresholded vocabulary the config asks for, with its stats."""
    thresholds = config["vocab"]["thresholds"]
    return expand(
        "results/vocab/ft{threshold}.{ext}",
        threshold=thresholds,
        ext=["parquet", "stats.json"],
    )


# --- Multiset prompts ---


def prompt_multisets():
    """The multiset sizes m the config asks for (prompts.multiset_freq[m-1] > 0)."""
    freqs = config["prompts"]["multiset_freq"]
    return [m for m, freq in enumerate(freqs, 1) if freq > 0]


def prompt_shard_names():
    """File names of the training shards of one Mm."""
    return [shard_name(k) for k in range(config["prompts"]["shards"])]


def prompt_outputs():
    """Every prompt file `rule all` builds: each vocabulary threshold T and multiset size m."""
    names = prompt_shard_names() + ["heldout.parquet", "stats.json"]
    return expand(
        "results/prompts/ft{threshold}/m{m}/{name}",
        threshold=config["vocab"]["thresholds"],
        m=prompt_multisets(),
        name=names,
    )


def prompt_params(wildcards):
    """The settings one Mm depends on: another m's frequency does not re-run it."""
    prompts = config["prompts"]
    keys = ["collections", "seed", "heldout", "heldout_rows", "fraction"]
    settings = {key: prompts[key] for key in keys}
    settings["freq"] = prompts["multiset_freq"][int(wildcards.m) - 1]
    return settings


def final_outputs():
    """What `rule all` builds: the end product of every stage the config enables."""
    return vocab_files() + prompt_outputs()
