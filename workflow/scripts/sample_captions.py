"""Snakemake adapter of rule sample_captions: caption templates -> training rows."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from novic.captions import run_sample  # noqa: E402

run_sample(
    snakemake.input.vocab,
    snakemake.input.captions,
    list(snakemake.output.parts),
    snakemake.output.heldout,
    snakemake.params.cfg,
)
