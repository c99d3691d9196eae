# Multiset prompt templating (novic.prompts, reference section 2): one job per (T, m).
#
# results/prompts/ft{threshold}/m{m}/
#   part-NNNN.parquet     training rows, prompts.shards files (text-dataset schema)
#   heldout.parquet       rows of the held-out templates (prompts.heldout), at most heldout_rows
#   stats.json            row counts, template totals, variant counts


rule make_prompts:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        templates=config["prompts"]["templates"],
    output:
        shards=expand(
            "results/prompts/ft{{threshold}}/m{{m}}/{name}", name=prompt_shard_names()
        ),
        heldout="results/prompts/ft{threshold}/m{m}/heldout.parquet",
        stats="results/prompts/ft{threshold}/m{m}/stats.json",
    log:
        "results/logs/make_prompts/ft{threshold}_m{m}.log",
    benchmark:
        "results/benchmarks/make_prompts/ft{threshold}_m{m}.tsv"
    wildcard_constraints:
        m=r"[1-9]",
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        prompts=prompt_params,
    script:
        "../scripts/make_prompts.py"
