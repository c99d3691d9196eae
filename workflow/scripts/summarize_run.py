"""Snakemake adapter of rule summarize_run: the report's table and figures of one run."""

from novic.jobs import start

job = start(snakemake)

from novic.report import run_report  # noqa: E402

out = snakemake.output
run_report(
    snakemake.wildcards.run,
    snakemake.input.evals,
    snakemake.input.text,
    snakemake.input.train,
    {"table": out.table, "curves": out.curves, "accuracy": out.accuracy, "gap": out.gap},
    open_vocab_paths=[snakemake.input.open_vocab]
    if isinstance(snakemake.input.open_vocab, str)
    else list(snakemake.input.open_vocab),
)
