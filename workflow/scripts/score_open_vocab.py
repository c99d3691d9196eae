"""Snakemake adapter of rule score_open_vocab: open-vocabulary points with people's and the
LLM's annotations (people's first)."""

from novic.jobs import start

job = start(snakemake)

from novic.annotate import run_score  # noqa: E402


def paths(named):
    """A named input as a list of paths (Snakemake gives one path as a string)."""
    return [named] if isinstance(named, str) else list(named)


specificity = paths(snakemake.input.specificity)
run_score(
    predictions_path=snakemake.input.predictions,
    human_path=snakemake.input.annotations,
    llm_paths=paths(snakemake.input.llm),
    out_path=snakemake.output[0],
    specificity_path=specificity[0] if specificity else None,
)
