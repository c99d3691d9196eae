"""Snakemake adapter of rule evaluate_text: decode held-out text embeddings of one run."""

from novic.logs import log_to

log_to(snakemake.log[0])

import torch  # noqa: E402

from novic.embedders import pick_device  # noqa: E402
from novic.evaluate import EvalSettings, evaluate_text  # noqa: E402

torch.set_num_threads(snakemake.threads)
cfg = snakemake.params.cfg
settings = EvalSettings.from_config(
    {**cfg["eval"], "batch_size": snakemake.config["eval"]["batch_size"]}
)
evaluate_text(
    snakemake.input.decoder,
    dict(zip(cfg["sources"], snakemake.input.heldout, strict=True)),
    settings,
    pick_device(snakemake.resources.get("gpu", 0)),
    snakemake.output[0],
)
