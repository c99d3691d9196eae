"""Snakemake adapter of rule sample_captions: caption templates -> training rows."""

from novic.jobs import start

job = start(snakemake)

from novic.captions import run_sample  # noqa: E402

run_sample(
    snakemake.input.vocab,
    snakemake.input.captions,
    list(snakemake.output.parts),
    snakemake.output.heldout,
    job.params,
)
