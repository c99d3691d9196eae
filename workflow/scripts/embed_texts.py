"""Snakemake adapter of rule embed_texts: one text shard -> one embedding shard (resumable)."""

from novic.logs import log_to

log_to(snakemake.log[0])

from novic.cache import embed_texts_job  # noqa: E402

embed_texts_job(
    texts=snakemake.input.texts,
    embedder_info=snakemake.input.embedder,
    out=snakemake.output[0],
    shard_id=f"{snakemake.wildcards.dataset}/{snakemake.wildcards.part}",
    params=snakemake.params.cfg,
    settings=snakemake.config["embeddings"],
    threads=snakemake.threads,
    gpus=snakemake.resources.get("gpu", 0),
)
