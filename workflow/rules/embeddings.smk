# CLIP text embeddings (novic.embedders, novic.embed, novic.mix) and each run's training mix.
#
# results/embedders/{embedder}.json                  the embedder's identity (spec hash, dim);
#                                                    its weights are downloaded here, once, on
#                                                    the submit host
# results/embedders/{embedder}/image_tower.safetensors
#                                                    an offline CLIP's image tower (locked_text
#                                                    specs), trained on Fashion-MNIST's train split
# results/embeddings/{embedder}/{dataset}/{part}.parquet
#                                                    one job per text shard ({dataset}/{part}
#                                                    mirrors results/: prompts/ft2/m1/part-0003,
#                                                    captions/gpt35/ft2/samples/part-0000)
# results/models/{run}/mix.json                      the run's sources, weights and shards
#
# Only the embeddings some run's mix needs are built.

TEXT_DATASET = r"prompts/ft\d+/m\d|captions/[A-Za-z0-9_-]+/ft\d+/samples"


# Downloads need internet, which cluster compute nodes often lack: run on the submit host.
localrules:
    prepare_embedder,


rule train_image_tower:
    input:
        classes=lambda w: image_tower_params(w)["classes"],
    output:
        "results/embedders/{embedder}/image_tower.safetensors",
    log:
        "results/logs/embeddings/train_image_tower.{embedder}.log",
    benchmark:
        "results/benchmarks/embeddings/train_image_tower.{embedder}.tsv"
    conda:
        "../envs/novic.yaml"
    threads: 1  # one thread: the same settings give the same weights
    params:
        cfg=image_tower_params,
    script:
        "../scripts/train_image_tower.py"


rule prepare_embedder:
    input:
        embedder_checkpoint,
    output:
        "results/embedders/{embedder}.json",
    log:
        "results/logs/embeddings/prepare_embedder.{embedder}.log",
    conda:
        "../envs/novic.yaml"
    params:
        cfg=prepare_params,
        runtime="embeddings",
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
        dataset=TEXT_DATASET,
        part=r"part-\d{4}|heldout",
    conda:
        "../envs/novic.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        cfg=embed_params,
        runtime="embeddings",
    script:
        "../scripts/embed_texts.py"


rule write_mix:
    input:
        vocab=run_vocab,
        embedder=run_embedder,
        shards=run_mix_shards,
        heldout=run_heldout_files,
    output:
        "results/models/{run}/mix.json",
    log:
        "results/logs/embeddings/write_mix.{run}.log",
    conda:
        "../envs/novic.yaml"
    params:
        cfg=mix_params,
    script:
        "../scripts/write_mix.py"
