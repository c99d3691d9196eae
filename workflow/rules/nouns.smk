rule extract_nouns:
    input:
        unpack(noun_inputs),
    output:
        dictionary="results/nouns/dictionary.parquet",
        stats="results/nouns/dictionary.stats.json",
    log:
        "results/logs/extract_nouns.log",
    benchmark:
        "results/benchmarks/extract_nouns.tsv"
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        nouns=noun_params(),
    script:
        "../scripts/extract_nouns.py"


rule threshold_vocab:
    input:
        dictionary="results/nouns/dictionary.parquet",
        class_lists=noun_lists(),
    output:
        vocab="results/vocab/ft{threshold}.parquet",
        stats="results/vocab/ft{threshold}.stats.json",
    log:
        "results/logs/threshold_vocab/ft{threshold}.log",
    conda:
        "../envs/novic.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    script:
        "../scripts/threshold_vocab.py"
