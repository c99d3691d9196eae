"""Snakemake adapter of rule annotate_predictions: an LLM grades one run's unannotated
predictions on one benchmark."""

from pathlib import Path

from novic.jobs import start

job = start(snakemake, log=snakemake.log.main)

from novic.annotate import run_annotate  # noqa: E402

out = Path(snakemake.output[0])
run_annotate(
    predictions_path=snakemake.input.predictions,
    human_path=snakemake.input.annotations,
    out_path=out,
    cache_dir=out.parent.parent / "cache",  # results/annotations/{llm}/cache
    params=job.params,
    runtime=job.runtime,
    threads=job.threads,
    server_log=snakemake.log.server,
)
