from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    threshold=r"\d+",
    run=r"[A-Za-z0-9_-]+",
    llm=r"[A-Za-z0-9_-]+",
    embedder=r"[A-Za-z0-9_-]+",


include: "workflow/rules/nouns.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/captions.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/annotate.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
