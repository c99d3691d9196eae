"""Snakemake adapter of rule embed_vocab_nouns: every noun of a vocabulary, embedded with one
prompt set (the whole-vocabulary baseline's cache)."""

from novic.jobs import start

job = start(snakemake)

from novic.baseline import embed_vocab_nouns_job  # noqa: E402

embed_vocab_nouns_job(
    vocab=snakemake.input.vocab,
    embedder_info=snakemake.input.embedder,
    out=snakemake.output[0],
    params=job.params,
    runtime=job.runtime,
    threads=job.threads,
    device=job.device(),
)
