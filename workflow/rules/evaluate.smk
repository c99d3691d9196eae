# Evaluation (novic.evaluate; reference sections 8 and 9) and the report's figures.
#
# results/eval/{run}/{benchmark}.json              metrics: zero-shot ceiling, NOVIC with the
#                                                  class list, free predictions, semantic
#                                                  similarity, open-vocabulary points, modality
#                                                  gap, config hash, device, timings
# results/eval/{run}/{benchmark}.predictions.json  every image's predictions
# results/eval/{run}/{benchmark}.samples.png       sample images with their top predictions
# results/vocab_embeddings/{embedder}/ft{threshold}/{prompts}.parquet
#                                                  every noun of a vocabulary embedded with a
#                                                  prompt set: the whole-vocabulary zero-shot
#                                                  baseline (novic.baseline), built once
# results/eval/{run}/text.json                     text side: held-out templates, exact match
# results/report/{run}/                            the report's table and figures
# results/report/runs.csv, runs.png                every built run side by side (the ablation)
# results/report/paper_table1.csv, paper_table2.csv
#                                                  the paper's Tables 1 and 2 for every built run,
#                                                  the paper's numbers (resources/
#                                                  paper_results.yaml) beside its own
#
# Image jobs ask for a GPU (resources gpu=1) and use it when they get one, else the CPU.


rule embed_vocab_nouns:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        embedder="results/embedders/{embedder}.json",
    output:
        "results/vocab_embeddings/{embedder}/ft{threshold}/{prompts}.parquet",
    log:
        "results/logs/vocab_embeddings/{embedder}/ft{threshold}/{prompts}.log",
    benchmark:
        "results/benchmarks/vocab_embeddings/{embedder}/ft{threshold}/{prompts}.tsv"
    wildcard_constraints:
        prompts=r"[a-z]+",  # a prompt set (eval.benchmarks.*.prompts)
    conda:
        "../envs/novic.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        cfg=vocab_embed_params,
        runtime="embeddings",
    script:
        "../scripts/embed_vocab_nouns.py"


rule evaluate_benchmark:
    input:
        decoder="results/models/{run}/decoder.pt",
        embedder=run_embedder,
        dictionary="results/nouns/dictionary.parquet",
        files=benchmark_files,
        vocab_embeddings=eval_vocab_embeddings,
    output:
        metrics="results/eval/{run}/{benchmark}.json",
        predictions="results/eval/{run}/{benchmark}.predictions.json",
        samples=report(
            "results/eval/{run}/{benchmark}.samples.png",
            caption="../report/samples.rst",
            category="{run}",
            subcategory="Sample predictions",
        ),
    log:
        "results/logs/eval/{run}/{benchmark}.log",
    benchmark:
        "results/benchmarks/eval/{run}/{benchmark}.tsv"
    wildcard_constraints:
        benchmark="|".join(config["eval"]["benchmarks"]) or "(?!)",
    conda:
        "../envs/novic.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        cfg=eval_params,
        runtime=["eval", "embeddings"],
    script:
        "../scripts/evaluate_benchmark.py"


rule evaluate_text:
    input:
        decoder="results/models/{run}/decoder.pt",
        heldout=run_heldout_files,
    output:
        "results/eval/{run}/text.json",
    log:
        "results/logs/eval/{run}/text.log",
    benchmark:
        "results/benchmarks/eval/{run}/text.tsv"
    conda:
        "../envs/novic.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        cfg=text_params,
        runtime="eval",
    script:
        "../scripts/evaluate_text.py"


rule summarize_run:
    input:
        evals=run_eval_files,
        open_vocab=run_open_vocab_files,
        text="results/eval/{run}/text.json",
        train="results/models/{run}/metrics.jsonl",
    output:
        table=report(
            "results/report/{run}/metrics.csv",
            caption="../report/metrics.rst",
            category="{run}",
            subcategory="Metrics",
        ),
        curves=report(
            "results/report/{run}/training.png",
            caption="../report/training.rst",
            category="{run}",
            subcategory="Training",
        ),
        accuracy=report(
            "results/report/{run}/accuracy.png",
            caption="../report/accuracy.rst",
            category="{run}",
            subcategory="Accuracy",
        ),
        gap=report(
            "results/report/{run}/modality_gap.png",
            caption="../report/modality_gap.rst",
            category="{run}",
            subcategory="Modality gap",
        ),
    log:
        "results/logs/report/{run}.log",
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/summarize_run.py"


rule compare_runs:
    input:
        evals=compare_files,
        paper="resources/paper_results.yaml",
    output:
        table=report(
            "results/report/runs.csv",
            caption="../report/runs.rst",
            category="Runs compared",
            subcategory="Table",
        ),
        figure=report(
            "results/report/runs.png",
            caption="../report/runs.rst",
            category="Runs compared",
            subcategory="Figure",
        ),
        paper_table1=report(
            "results/report/paper_table1.csv",
            caption="../report/paper_table1.rst",
            category="Paper tables",
            subcategory="Table 1: class-list benchmarks",
        ),
        paper_table2=report(
            "results/report/paper_table2.csv",
            caption="../report/paper_table2.rst",
            category="Paper tables",
            subcategory="Table 2: open-vocabulary scores",
        ),
    log:
        "results/logs/report/runs.log",
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=compare_params,
    script:
        "../scripts/compare_runs.py"
