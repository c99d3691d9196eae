# LLM annotation of free predictions and the open-vocabulary score over all of them
# (novic.annotate; docs/evaluation.md, Annotation). Only with eval.annotate.llm set, and only
# for benchmarks with an `annotations` file (people's annotations, which always win).
#
# results/annotations/{llm}/cache/bucket-NNN.jsonl   every grading request and reply of that
#                                      LLM, shared by all runs and benchmarks; NOT a rule
#                                      output, so it survives failed or killed jobs and no
#                                      answered pair is sent again
# results/annotations/{llm}/{benchmark}/{run}.json   the LLM's grades of one run's predictions
#                                      that people did not annotate (one row each, with `by`)
# results/eval/{run}/{benchmark}.open_vocab.json     the open-vocabulary score with people's
#                                      and the LLM's annotations, and who annotated what share
#
# The DAG: evaluate_benchmark (predictions) -> annotate_predictions -> score_open_vocab.


# Remote APIs need internet, which cluster compute nodes often lack: run on the submit host.
if annotate_remote():

    localrules:
        annotate_predictions,


rule annotate_predictions:
    input:
        predictions="results/eval/{run}/{benchmark}.predictions.json",
        annotations=benchmark_annotations,
    output:
        "results/annotations/{llm}/{benchmark}/{run}.json",
    log:
        main="results/logs/annotations/{llm}/{benchmark}/{run}.log",
        server="results/logs/annotations/{llm}/{benchmark}/{run}.llm_server.log",
    benchmark:
        "results/benchmarks/annotations/{llm}/{benchmark}/{run}.tsv"
    wildcard_constraints:
        benchmark="|".join(annotated_benchmarks()) or "(?!)",
    conda:
        "../envs/novic.yaml"
    threads: annotate_threads
    resources:
        llm_jobs=1,
    params:
        cfg=annotate_params,
        runtime="captions.requests",
    script:
        "../scripts/annotate_predictions.py"


rule score_open_vocab:
    input:
        predictions="results/eval/{run}/{benchmark}.predictions.json",
        annotations=benchmark_annotations,
        specificity=benchmark_specificity,
        llm=run_llm_annotations,
    output:
        "results/eval/{run}/{benchmark}.open_vocab.json",
    log:
        "results/logs/eval/{run}/{benchmark}.open_vocab.log",
    wildcard_constraints:
        benchmark="|".join(annotated_benchmarks()) or "(?!)",
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/score_open_vocab.py"
