"""Snakemake adapter of rule evaluate_benchmark: one run on one image benchmark."""

from novic.jobs import start

job = start(snakemake)

import torch  # noqa: E402

from novic.evaluate import evaluate_images  # noqa: E402
from novic.settings import BenchmarkSettings, EvalSettings  # noqa: E402

torch.set_num_threads(job.threads)
evaluate_images(
    snakemake.input.decoder,
    BenchmarkSettings.from_config(snakemake.wildcards.benchmark, job.params["benchmark"]),
    EvalSettings.from_config(job.params["eval"] | {"batch_size": job.runtime["batch_size"]}),
    snakemake.input.dictionary,
    job.device(),
    snakemake.output.metrics,
    snakemake.output.predictions,
    snakemake.output.samples,
    cache_dir=job.runtime["cache_dir"],
    vocab_embeddings=snakemake.input.get("vocab_embeddings") or None,
)
