"""Snakemake adapter of rule compare_runs: the report's table and figure of every run."""

from novic.jobs import start

job = start(snakemake)

from novic.report import compare_runs  # noqa: E402

compare_runs(
    job.params["runs"], {"table": snakemake.output.table, "figure": snakemake.output.figure}
)
