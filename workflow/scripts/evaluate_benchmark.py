"""Snakemake adapter of rule evaluate_benchmark: one run on one image benchmark."""

from novic.logs import log_to

log_to(snakemake.log[0])

import torch  # noqa: E402

from novic.embedders import pick_device  # noqa: E402
from novic.evaluate import BenchmarkSettings, EvalSettings, evaluate_images  # noqa: E402

torch.set_num_threads(snakemake.threads)
cfg = snakemake.params.cfg
# batch_size is not a param: changing it re-runs nothing.
settings = EvalSettings.from_config(
    {**cfg["eval"], "batch_size": snakemake.config["eval"]["batch_size"]}
)
evaluate_images(
    snakemake.input.decoder,
    BenchmarkSettings.from_config(snakemake.wildcards.benchmark, cfg["benchmark"]),
    settings,
    snakemake.input.dictionary,
    pick_device(snakemake.resources.get("gpu", 0)),
    snakemake.output.metrics,
    snakemake.output.predictions,
    snakemake.output.samples,
    cache_dir=snakemake.config["embeddings"]["cache_dir"],
)
