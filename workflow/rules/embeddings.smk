# CLIP text embeddings (novic.embedders, novic.cache) and each run's training mix.
#
# results/embedders/{embedder}.json                  the embedder's identity (spec hash, dim);
#                                                    its weights are downloaded here, once, on
#                                                    the submit host
# results/embeddings/{embedder}/{dataset}/{part}.parquet
#                                                    one job per text shard ({dataset}/{part}
#                                                    mirrors results/: prompts/ft2/m1/part-0003,
#                                                    captions/gpt35/ft2/samples/part-0000)
# results/models/{run}/mix.json                      the run's sources, weights and shards
#
# Only the embeddings some run's mix needs are built.
from novic.embedders import parse_spec
from novic.textdata import shard_name

EMBEDDER_KEY = r"[A-Za-z0-9_-]+"
TEXT_DATASET = r"prompts/ft\d+/m\d|captions/[A-Za-z0-9_-]+/ft\d+/samples"


# Every spec's shape is checked before any job runs (names are checked when loading).
for _key, _spec in config["embedders"].items():
    parse_spec(_spec, _key)


# Downloads need internet, which cluster compute nodes often lack: run on the submit host.
localrules:
    prepare_embedder,


rule prepare_embedder:
    input:
        embedder_checkpoint,
    output:
        "results/embedders/{embedder}.json",
    log:
        "results/logs/embeddings/prepare_embedder.{embedder}.log",
    wildcard_constraints:
        embedder=EMBEDDER_KEY,
    conda:
        "../envs/novic.yaml"
    params:
        cfg=prepare_params,
    script:
        "../scripts/prepare_embedder.py"


rule embed_texts:
    input:
        texts="results/{dataset}/{part}.parquet",
        embedder="results/embedders/{embedder}.json",
    output:
        "results/embeddings/{embedder}/{dataset}/{part}.parquet",
    log:
        "results/logs/embeddings/{embedder}/{dataset}/{part}.log",
    benchmark:
        "results/benchmarks/embeddings/{embedder}/{dataset}/{part}.tsv"
    wildcard_constraints:
        embedder=EMBEDDER_KEY,
        dataset=TEXT_DATASET,
        part=r"part-\d{4}|heldout",
    conda:
        "../envs/novic.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        cfg=embed_params,
    script:
        "../scripts/embed_texts.py"


rule write_mix:
    input:
        vocab=mix_vocab,
        embedder=mix_embedder,
        shards=run_mix_shards,
        heldout=mix_heldout,
    output:
        "results/models/{run}/mix.json",
    log:
        "results/logs/embeddings/write_mix.{run}.log",
    wildcard_constraints:
        run=r"[A-Za-z0-9_-]+",
    conda:
        "../envs/novic.yaml"
    params:
        cfg=mix_params,
    script:
        "../scripts/write_mix.py"
