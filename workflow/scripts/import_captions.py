"""Snakemake adapter of rule import_captions: the reference's caption dataset -> templates."""

from novic.jobs import start

job = start(snakemake)

from novic.reference import run_import  # noqa: E402

run_import(
    vocab_path=snakemake.input.vocab,
    source_path=snakemake.input.source,
    captions_path=snakemake.output.captions,
    stats_path=snakemake.output.stats,
    params=job.params,
)
