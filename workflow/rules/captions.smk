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
from novic.textdata import shard_name

# The active LLM's key must be in the environment (declared only where one is needed, since a
# declared variable is required even for a dry run). The script reads it; it never becomes a
# param, so it is not stored in .snakemake/metadata.
_active_llm = caption_llm(config["captions"]["llm"])
if config["captions"]["enabled"] and _active_llm["backend"] == "openai":

    envvars:
        "OPENAI_API_KEY",


if (
    config["captions"]["enabled"]
    and _active_llm["backend"] == "openai-compatible"
    and _active_llm.get("api_key_env")
):

    envvars:
        _active_llm["api_key_env"],


# Remote APIs need internet, which cluster compute nodes often lack: run on the submit host.
if _active_llm["backend"] != "local":

    localrules:
        generate_captions,


rule generate_captions:
    input:
        vocab="results/vocab/ft{threshold}.parquet",
    output:
        replies="results/captions/{llm}/ft{threshold}/replies/shard-{shard}.parquet",
        stats="results/captions/{llm}/ft{threshold}/replies/shard-{shard}.stats.json",
    log:
        main="results/logs/captions/{llm}/ft{threshold}/generate_captions.{shard}.log",
        server="results/logs/captions/{llm}/ft{threshold}/llm_server.{shard}.log",
    benchmark:
        "results/benchmarks/captions/{llm}/ft{threshold}/generate_captions.{shard}.tsv"
    wildcard_constraints:
        llm=r"[A-Za-z0-9_-]+",
        threshold=r"\d+",
        shard=r"\d+",
    conda:
        "../envs/novic.yaml"
    threads: caption_threads
    resources:
        llm_jobs=1,
    params:
        cfg=caption_generate_params,
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
        llm=r"[A-Za-z0-9_-]+",
        threshold=r"\d+",
    conda:
        "../envs/novic.yaml"
    params:
        cfg=caption_filter_params,
    script:
        "../scripts/filter_captions.py"


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
    wildcard_constraints:
        llm=r"[A-Za-z0-9_-]+",
        threshold=r"\d+",
    conda:
        "../envs/novic.yaml"
    params:
        cfg=config["captions"]["sample"],
    script:
        "../scripts/sample_captions.py"
