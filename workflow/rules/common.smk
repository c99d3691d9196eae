from pathlib import Path

from novic.config import validate_config

validate_config(
    config, Path(workflow.current_basedir).parent / "schemas/config.schema.yaml"
)


def vocab_files():
    """Every thresholded vocabulary the config asks for, with its stats."""
    thresholds = config["vocab"]["thresholds"]
    return expand(
        "results/vocab/ft{threshold}.{ext}",
        threshold=thresholds,
        ext=["parquet", "stats.json"],
    )


def final_outputs():
    """What `rule all` builds: the end product of every stage the config enables."""
    return vocab_files()
