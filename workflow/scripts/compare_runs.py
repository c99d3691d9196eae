"""Snakemake adapter of rule compare_runs: the report's table and figure of every run, and the
paper's Tables 1 and 2 with the paper's numbers beside them."""

from novic.jobs import start

job = start(snakemake)

from novic.report import compare_runs  # noqa: E402

out = snakemake.output
compare_runs(
    job.params["runs"],
    {
        "table": out.table,
        "figure": out.figure,
        "paper_table1": out.paper_table1,
        "paper_table2": out.paper_table2,
    },
    snakemake.input.paper,
)
