"""Snakemake adapter of rule train_decoder: train one run's object decoder."""

from novic.logs import log_to

log_to(snakemake.log[0])

from novic.embedders import pick_device  # noqa: E402
from novic.train import run_training  # noqa: E402

run = snakemake.wildcards.run
# checkpoint_every is read from the config, not a param: changing it must not re-train.
run_training(
    mix_path=snakemake.input.mix,
    vocab_path=snakemake.input.vocab,
    params=snakemake.params.run,
    decoder_path=snakemake.output.decoder,
    metrics_path=snakemake.output.metrics,
    device=pick_device(snakemake.resources.get("gpu", 0)),
    run=run,
    checkpoint_every=snakemake.config["runs"][run]["train"]["checkpoint_every"],
    threads=snakemake.threads,
)
