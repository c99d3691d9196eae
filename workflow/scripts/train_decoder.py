"""Snakemake adapter of rule train_decoder: train one run's object decoder."""

from novic.jobs import start

job = start(snakemake)

from novic.train import run_training  # noqa: E402

run_training(
    mix_path=snakemake.input.mix,
    vocab_path=snakemake.input.vocab,
    params=snakemake.params.run,
    decoder_path=snakemake.output.decoder,
    metrics_path=snakemake.output.metrics,
    device=job.device(),
    run=snakemake.wildcards.run,
    runtime=job.runtime,
    threads=job.threads,
)
