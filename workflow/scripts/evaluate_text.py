"""Snakemake adapter of rule evaluate_text: decode held-out text embeddings of one run."""

from novic.jobs import start

job = start(snakemake)

import torch  # noqa: E402

from novic.evaluate import evaluate_text  # noqa: E402
from novic.settings import EvalSettings  # noqa: E402

torch.set_num_threads(job.threads)
evaluate_text(
    snakemake.input.decoder,
    dict(zip(job.params["sources"], snakemake.input.heldout, strict=True)),
    EvalSettings.from_config(job.params["eval"] | job.runtime),
    job.device(),
    snakemake.output[0],
)
