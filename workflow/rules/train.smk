# Object decoder training (novic.train; reference sections 5 and 6): one job per run.
#
# results/models/{run}/decoder.pt      the trained decoder: hyperparameters, weights, target
#                                      nouns and their compact token map, embedder spec, config
# results/models/{run}/metrics.jsonl   one line per chunk: loss, token accuracy (and smoothed),
#                                      lr, grad norm, samples/s, ETA, device
# results/models/{run}/work/           NOT an output: the resumable checkpoint of an unfinished
#                                      job, so a killed job continues where it was
#
# The job asks for a GPU (resources gpu=1) and uses it when it gets one, else the CPU; the
# device is not a param, so moving to a GPU machine re-trains nothing.


rule train_decoder:
    input:
        mix="results/models/{run}/mix.json",
        vocab=run_vocab,
    output:
        decoder="results/models/{run}/decoder.pt",
        metrics="results/models/{run}/metrics.jsonl",
    log:
        "results/logs/train_decoder/{run}.log",
    benchmark:
        "results/benchmarks/train_decoder/{run}.tsv"
    conda:
        "../envs/novic.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        run=train_params,
        runtime=lambda wildcards: f"runs.{wildcards.run}.train",
    script:
        "../scripts/train_decoder.py"
