"""Snakemake adapter of rule make_prompts: one multiset Mm of one vocabulary FT{T}."""

from novic.jobs import start

job = start(snakemake)

import logging  # noqa: E402

from novic.io import write_json  # noqa: E402
from novic.prompts import make_prompts  # noqa: E402

stats = make_prompts(
    vocab=snakemake.input.vocab,
    templates=snakemake.input.templates,
    shards=list(snakemake.output.shards),
    heldout=snakemake.output.heldout,
    m=int(snakemake.wildcards.m),
    params=snakemake.params.prompts,
)
logging.info("wrote %d rows (%d held out)", stats["rows"], stats["heldout_rows"])
write_json(stats, snakemake.output.stats)
