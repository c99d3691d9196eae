"""Snakemake adapter of rule filter_captions: replies of all shards -> caption templates."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from novic.captions import run_filter  # noqa: E402

run_filter(
    vocab_path=snakemake.input.vocab,
    replies_paths=snakemake.input.replies,
    shard_stats_paths=snakemake.input.stats,
    captions_path=snakemake.output.captions,
    stats_path=snakemake.output.stats,
    params=snakemake.params.cfg,
)
