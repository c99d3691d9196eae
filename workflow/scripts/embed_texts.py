"""Snakemake adapter of rule embed_texts: one text shard -> one embedding shard (resumable)."""

from novic.jobs import start

job = start(snakemake)

from novic.embed import embed_texts_job  # noqa: E402

embed_texts_job(
    texts=snakemake.input.texts,
    embedder_info=snakemake.input.embedder,
    out=snakemake.output[0],
    shard_id=f"{snakemake.wildcards.dataset}/{snakemake.wildcards.part}",
    params=job.params,
    runtime=job.runtime,
    threads=job.threads,
    device=job.device(),
)
