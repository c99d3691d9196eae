"""Snakemake adapter of rule generate_captions: one shard of LLM caption requests."""

import logging
import sys

sys.stderr = open(snakemake.log.main, "w", buffering=1)  # noqa: SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

from novic.captions import reply_cache_dir, run_generate  # noqa: E402

# captions.requests (concurrency, retries, caps) is read from the config, not a param: how
# requests are sent does not change the replies, so changing it must not re-run anything.
run_generate(
    vocab_path=snakemake.input.vocab,
    replies_path=snakemake.output.replies,
    stats_path=snakemake.output.stats,
    cache_dir=reply_cache_dir(snakemake.output.replies),
    params=snakemake.params.cfg,
    requests=snakemake.config["captions"]["requests"],
    shard=int(snakemake.wildcards.shard),
    threads=snakemake.threads,
    server_log=snakemake.log.server,
)
