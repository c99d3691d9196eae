"""Snakemake adapter of rule score_open_vocab: open-vocabulary points with people's and the
LLM's annotations (people's first)."""

from novic.jobs import start

job = start(snakemake)

from novic.annotate import run_score  # noqa: E402

run_score(
    predictions_path=snakemake.input.predictions,
    human_path=snakemake.input.annotations,
    llm_paths=list(snakemake.input.llm),
    out_path=snakemake.output[0],
    specificity_path=snakemake.input.specificity or None,
)
