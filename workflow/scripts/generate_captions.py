"""Snakemake adapter of rule generate_captions: one shard of LLM caption requests."""

from novic.jobs import start

job = start(snakemake, log=snakemake.log.main)

from novic.captions import reply_cache_dir, run_generate  # noqa: E402

run_generate(
    vocab_path=snakemake.input.vocab,
    replies_path=snakemake.output.replies,
    stats_path=snakemake.output.stats,
    cache_dir=reply_cache_dir(snakemake.output.replies),
    params=job.params,
    runtime=job.runtime,
    shard=int(snakemake.wildcards.shard),
    threads=job.threads,
    server_log=snakemake.log.server,
)
