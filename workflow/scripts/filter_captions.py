"""Snakemake adapter of rule filter_captions: replies of all shards -> caption templates."""

from novic.jobs import start

job = start(snakemake)

from novic.captions import run_filter  # noqa: E402

run_filter(
    vocab_path=snakemake.input.vocab,
    replies_paths=snakemake.input.replies,
    shard_stats_paths=snakemake.input.stats,
    captions_path=snakemake.output.captions,
    stats_path=snakemake.output.stats,
    params=job.params,
)
