# LLM captions (reference section 3): generate per noun shard, filter, sample training rows.
#
# results/captions/{llm}/
#   cache/bucket-NNN.jsonl             every request and reply, shared by all vocabularies and
#                                      shard counts; NOT a rule output, so it survives failed or
#                                      killed jobs and no answered request is sent again
#   ft{threshold}/replies/shard-NNN.parquet   the replies one shard's nouns used (+ .stats.json)
#   ft{threshold}/captions.parquet     filtered caption templates (+ captions.stats.json: yield)
#   ft{threshold}/samples/part-NNNN.parquet   training rows, text-dataset schema (shuffled)
#   ft{threshold}/samples/heldout.parquet     rows of held-out caption templates (text-side
#                                      evaluation; never trained on)
#
# An llms entry with backend `import` has no cache/ or replies/: import_captions reads the
# reference's caption dataset (its `path`) into ft{threshold}/captions.parquet instead of
# generate_captions + filter_captions; sample_captions is the same for both.


# An API key is read by the job from the environment when it starts (it fails at once, naming
# the variable, if it is missing); it is never a param, a log line or an output, and a dry run
# or a run that needs no caption job does not need it.
# Remote APIs need internet, which cluster compute nodes often lack: run on the submit host.
if caption_llm(config["captions"]["llm"])["backend"] != "local":

    localrules:
        generate_captions,


rule generate_captions:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        class_lists=config["captions"]["generate"]["class_lists"],
    output:
        replies="results/captions/{llm}/ft{threshold}/replies/shard-{shard}.parquet",
        stats="results/captions/{llm}/ft{threshold}/replies/shard-{shard}.stats.json",
    log:
        main="results/logs/captions/{llm}/ft{threshold}/generate_captions.{shard}.log",
        server="results/logs/captions/{llm}/ft{threshold}/llm_server.{shard}.log",
    benchmark:
        "results/benchmarks/captions/{llm}/ft{threshold}/generate_captions.{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
        llm=caption_llm_pattern(imported=False),
    conda:
        "../envs/novic.yaml"
    threads: caption_threads
    resources:
        llm_jobs=1,
    params:
        cfg=caption_generate_params,
        runtime="captions.requests",
    script:
        "../scripts/generate_captions.py"


rule filter_captions:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        replies=expand(
            "results/captions/{{llm}}/ft{{threshold}}/replies/shard-{shard}.parquet",
            shard=caption_shards(),
        ),
        stats=expand(
            "results/captions/{{llm}}/ft{{threshold}}/replies/shard-{shard}.stats.json",
            shard=caption_shards(),
        ),
    output:
        captions="results/captions/{llm}/ft{threshold}/captions.parquet",
        stats="results/captions/{llm}/ft{threshold}/captions.stats.json",
    log:
        "results/logs/captions/{llm}/ft{threshold}/filter_captions.log",
    wildcard_constraints:
        llm=caption_llm_pattern(imported=False),
    conda:
        "../envs/novic.yaml"
    params:
        cfg=caption_filter_params,
    script:
        "../scripts/filter_captions.py"


rule import_captions:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        source=caption_import_source,
    output:
        captions="results/captions/{llm}/ft{threshold}/captions.parquet",
        stats="results/captions/{llm}/ft{threshold}/captions.stats.json",
    log:
        "results/logs/captions/{llm}/ft{threshold}/import_captions.log",
    wildcard_constraints:
        llm=caption_llm_pattern(imported=True),
    conda:
        "../envs/novic.yaml"
    params:
        cfg=caption_import_params,
    script:
        "../scripts/import_captions.py"


rule sample_captions:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
        captions="results/captions/{llm}/ft{threshold}/captions.parquet",
    output:
        parts=expand(
            "results/captions/{{llm}}/ft{{threshold}}/samples/{name}",
            name=caption_sample_names(),
        ),
        heldout="results/captions/{llm}/ft{threshold}/samples/heldout.parquet",
    log:
        "results/logs/captions/{llm}/ft{threshold}/sample_captions.log",
    benchmark:
        "results/benchmarks/captions/{llm}/ft{threshold}/sample_captions.tsv"
    conda:
        "../envs/novic.yaml"
    params:
        cfg=params_of("captions.sample"),
    script:
        "../scripts/sample_captions.py"
