# The config check (once, before any DAG is built) and every input and params helper, one
# section per stage (snakemake --lint wants functions in common.smk, rule files declarative).
# Helpers only look things up: cross-key rules live in novic.config.check.

import re

from novic.config import built_benchmarks, built_runs, validate_config
from novic.datasets import KIND_FILES
from novic.schema import lookup, without_runtime
from novic.textdata import shard_name

validate_config(config)


def params_of(section):
    """A rule's params: a config section (a dotted key path) without its runtime-only keys,
    so that changing a batch size or a timeout re-runs nothing."""
    return without_runtime(lookup(config, section), section)


# --- Object nouns and vocabularies (nouns.smk) ---


def noun_lists():
    """Every class list of nouns.class_lists and nouns.general_lists (the vocabularies report
    their coverage)."""
    return config["nouns"]["class_lists"] + config["nouns"]["general_lists"]


def noun_inputs(wildcards):
    """extract_nouns' files: the reference's dictionary (nouns.source.kind reference), or the
    rules, word list and class lists the WordNet build reads."""
    nouns = config["nouns"]
    if nouns["source"]["kind"] == "reference":
        return {"source": nouns["source"]["path"]}
    return {
        "rules": nouns["rules"],
        "homographs": nouns["homographs"],
        "plural_only": nouns["plural_only"],
        "class_lists": noun_lists(),
    }


def noun_params():
    """extract_nouns' settings: only nouns.source when it reads the reference's dictionary, so
    that the WordNet build's settings do not re-run it."""
    nouns = params_of("nouns")
    if nouns["source"]["kind"] == "reference":
        return {"source": nouns["source"]}
    return nouns


# --- a run's sources ---


def source_dataset(source, threshold):
    """The text dataset (a folder under results/) of one mix source."""
    if source == "captions":
        return f"captions/{config['captions']['llm']}/ft{threshold}/samples"
    return f"prompts/ft{threshold}/{source}"


def source_texts(source, threshold):
    """The text shards ({dataset}/{part}, no extension) of one mix source."""
    if source == "captions":
        parts = config["captions"]["sample"]["parts"]
    else:
        parts = config["prompts"]["shards"]
    dataset = source_dataset(source, threshold)
    return [f"{dataset}/{shard_name(k).removesuffix('.parquet')}" for k in range(parts)]


def run_mix(run):
    """Source -> weight of a run's mix (weights > 0 only)."""
    return {s: w for s, w in config["runs"][run]["mix"].items() if w > 0}


def run_sources(run):
    """Source name -> embedding shards of a run's mix."""
    r = config["runs"][run]
    return {
        source: [
            f"results/embeddings/{r['embedder']}/{texts}.parquet"
            for texts in source_texts(source, r["threshold"])
        ]
        for source in run_mix(run)
    }


def run_heldout(run):
    """Source name -> held-out rows of a run's sources: prompts of held-out templates and
    captions of held-out caption templates (validation data, the text-side evaluation).
    """
    r = config["runs"][run]
    return {
        source: f"results/embeddings/{r['embedder']}/{source_dataset(source, r['threshold'])}/heldout.parquet"
        for source in run_mix(run)
    }


def run_vocab(wildcards):
    return f"results/vocab/ft{config['runs'][wildcards.run]['threshold']}.parquet"


def run_embedder(wildcards):
    return f"results/embedders/{config['runs'][wildcards.run]['embedder']}.json"


def run_heldout_files(wildcards):
    return list(run_heldout(wildcards.run).values())


def run_shards(run):
    """Every embedding shard of a run's mix, in one list."""
    return [path for paths in run_sources(run).values() for path in paths]


# --- Multiset prompts (prompts.smk) ---


def prompt_shard_names():
    """File names of the training shards of one Mm."""
    return [shard_name(k) for k in range(config["prompts"]["shards"])]


def prompt_params(wildcards):
    """The settings one Mm depends on: another m's frequency does not re-run it."""
    settings = params_of("prompts")
    freqs = settings.pop("multiset_freq")
    del settings["templates"], settings["shards"]  # the input file and the outputs
    return settings | {"freq": freqs[int(wildcards.m) - 1]}


# --- LLM captions (captions.smk) ---


def caption_llm(name):
    """The settings of LLM `name` of captions.llms (for rules targeted by file name); the
    import-only `path` only where the backend imports, so that adding that key to the schema
    re-ran no one's paid caption jobs."""
    llms = config["captions"]["llms"]
    if name not in llms:
        raise ValueError(f"captions.llms has no entry {name!r} (known: {sorted(llms)})")
    llm = llms[name]
    if llm["backend"] == "import":
        return llm
    return {key: value for key, value in llm.items() if key != "path"}


def caption_llm_pattern(imported):
    """A wildcard pattern matching the captions.llms names whose backend is (not) import:
    imported captions come from import_captions, the others from generate/filter_captions.
    """
    names = [
        re.escape(name)
        for name, llm in config["captions"]["llms"].items()
        if (llm["backend"] == "import") == imported
    ]
    return "|".join(names) if names else "(?!)"


def caption_import_source(wildcards):
    """The caption dataset file of an import LLM entry (given by the user, never fetched)."""
    return caption_llm(wildcards.llm)["path"]


def caption_import_params(wildcards):
    return {
        "filter": params_of("captions.filter"),
        "source": caption_llm(wildcards.llm),
    }


def caption_shards():
    return [f"{i:03d}" for i in range(config["captions"]["shards"])]


def caption_sample_names():
    return [shard_name(k) for k in range(config["captions"]["sample"]["parts"])]


def caption_generate_params(wildcards):
    """Everything that determines the replies (how requests are sent is runtime-only)."""
    return {
        "name": wildcards.llm,
        "llm": caption_llm(wildcards.llm),
        "generate": params_of("captions.generate"),
        "shards": config["captions"]["shards"],
    }


def caption_filter_params(wildcards):
    return {
        "generate": params_of("captions.generate"),
        "filter": params_of("captions.filter"),
    }


def caption_threads(wildcards):
    """The embedded server computes; remote backends only wait on the network."""
    return 4 if caption_llm(wildcards.llm)["backend"] == "local" else 1


# --- CLIP embeddings and training mixes (embeddings.smk) ---


def embedder_spec(key):
    """The spec of embedder `key` (for rules targeted by file name); an offline CLIP's image
    tower is the one rule train_image_tower makes unless the spec names a checkpoint."""
    embedders = config["embedders"]
    if key not in embedders:
        raise ValueError(f"embedders has no entry {key!r} (known: {sorted(embedders)})")
    spec = embedders[key]
    if "locked_text" in spec and "checkpoint" not in spec:
        return spec | {"checkpoint": image_tower_file(key)}
    return spec


def image_tower_file(key):
    return f"results/embedders/{key}/image_tower.safetensors"


def image_tower_params(wildcards):
    return embedder_spec(wildcards.embedder)["locked_text"]


def embedder_checkpoint(wildcards):
    """A local weights file is an input: replacing it re-embeds."""
    spec = embedder_spec(wildcards.embedder)
    return [spec["checkpoint"]] if "checkpoint" in spec else []


def prepare_params(wildcards):
    return {"embedder": wildcards.embedder, "spec": embedder_spec(wildcards.embedder)}


def embed_params(wildcards):
    """What the embeddings depend on: the embedder and the embeddings section's params."""
    return prepare_params(wildcards) | params_of("embeddings")


def run_mix_shards(wildcards):
    return run_shards(wildcards.run)


def mix_params(wildcards):
    run = config["runs"][wildcards.run]
    return {
        "run": wildcards.run,
        "embedder": run["embedder"],
        "threshold": run["threshold"],
        "mix": run_mix(wildcards.run),
        "sources": run_sources(wildcards.run),
        "heldout": run_heldout(wildcards.run),
    }


# --- Decoder training (train.smk) ---


def train_params(wildcards):
    """Everything a run's decoder depends on (checkpoint_every is runtime-only)."""
    run = config["runs"][wildcards.run]
    return {
        "embedder": run["embedder"],
        "embedder_spec": config["embedders"][run["embedder"]],
        "threshold": run["threshold"],
        "mix": run_mix(wildcards.run),
        "model": run["model"],
        "noise": run["noise"],
        "train": params_of(f"runs.{wildcards.run}.train"),
    }


# --- Evaluation and report (evaluate.smk) ---


def benchmark(wildcards):
    return config["eval"]["benchmarks"][wildcards.benchmark]


def benchmark_files(wildcards):
    """A benchmark's data folder, class list, annotation and specificity files, and the
    metadata its kind reads (novic.datasets.KIND_FILES: the ImageNet wnids and names); a
    missing folder of build.benchmarks is reported by the config check, naming the key.
    """
    bench = benchmark(wildcards)
    keys = ("classes", "annotations", "specificity")
    kind_files = KIND_FILES.get(bench["kind"], ())
    extra = [path for path in kind_files if path != bench["classes"]]
    return [bench["root"]] + [bench[key] for key in keys if bench[key]] + extra


def eval_params(wildcards):
    """What one (run, benchmark) result depends on (batch_size is runtime-only)."""
    settings = params_of("eval")
    del (
        settings["benchmarks"],
        settings["annotate"],
    )  # the LLM annotation re-runs no evaluation
    return {"benchmark": benchmark(wildcards), "eval": settings}


def eval_vocab_embeddings(wildcards):
    """The run's noun embeddings for the benchmark's prompt set (the whole-vocabulary
    baseline), none when eval.whole_vocab is off."""
    if not config["eval"]["whole_vocab"]:
        return []
    run = config["runs"][wildcards.run]
    prompts = benchmark(wildcards)["prompts"]
    return f"results/vocab_embeddings/{run['embedder']}/ft{run['threshold']}/{prompts}.parquet"


def vocab_embed_params(wildcards):
    """What a noun-embedding cache depends on: the embedder, its autocast and the prompt set."""
    return prepare_params(wildcards) | {
        "autocast": config["embeddings"]["autocast"],
        "prompts": wildcards.prompts,
    }


def text_params(wildcards):
    """The text side: the held-out sources of the run and the decoding settings."""
    return {
        "sources": list(run_heldout(wildcards.run)),
        "eval": {k: config["eval"][k] for k in ("gencfg", "text_rows")},
    }


# --- LLM annotation and the open-vocabulary score (annotate.smk) ---


def annotate_llm():
    """The captions.llms entry that grades free predictions ("" = none)."""
    return config["eval"]["annotate"]["llm"]


def annotate_remote():
    return bool(annotate_llm()) and caption_llm(annotate_llm())["backend"] != "local"


def annotated_benchmarks():
    """The benchmarks with people's annotations (the ones annotated and scored)."""
    return [
        name for name, b in config["eval"]["benchmarks"].items() if b["annotations"]
    ]


def benchmark_annotations(wildcards):
    return benchmark(wildcards)["annotations"]


def benchmark_specificity(wildcards):
    path = benchmark(wildcards)["specificity"]
    return [path] if path else []


def annotate_params(wildcards):
    """What an LLM's grades depend on: the LLM, the grading settings, the benchmark."""
    settings = params_of("eval.annotate")
    del settings["llm"]  # the {llm} wildcard
    return {
        "name": wildcards.llm,
        "llm": caption_llm(wildcards.llm),
        "annotate": settings,
        "benchmark": wildcards.benchmark,
    }


def annotate_threads(wildcards):
    """The embedded server computes; remote backends only wait on the network."""
    return 4 if caption_llm(wildcards.llm)["backend"] == "local" else 1


def run_llm_annotations(wildcards):
    """The LLM's grades of a run's predictions on a benchmark (none without eval.annotate.llm)."""
    if not annotate_llm():
        return []
    return [
        f"results/annotations/{annotate_llm()}/{wildcards.benchmark}/{wildcards.run}.json"
    ]


def open_vocab_files(run):
    """A run's open-vocabulary scores with the LLM's annotations (none without an LLM)."""
    if not annotate_llm():
        return []
    names = [b for b in built_benchmarks(config) if b in annotated_benchmarks()]
    return expand(
        "results/eval/{run}/{benchmark}.open_vocab.json", run=run, benchmark=names
    )


def run_open_vocab_files(wildcards):
    return open_vocab_files(wildcards.run)


def run_eval_files(wildcards):
    return expand(
        "results/eval/{run}/{benchmark}.json",
        run=wildcards.run,
        benchmark=list(built_benchmarks(config)),
    )


def compared_runs():
    """The runs compared in the report: every built run, its noise settings, embedder and
    vocabulary (the paper tables' match to the paper's numbers) and the metrics its rows and
    bars are read from (its benchmarks' and its text side's)."""
    return {
        run: {
            "noise": config["runs"][run]["noise"],
            "embedder": config["embedders"].get(config["runs"][run]["embedder"]),
            "embedder_key": config["runs"][run]["embedder"],
            "threshold": config["runs"][run]["threshold"],
            "evals": expand(
                "results/eval/{run}/{benchmark}.json",
                run=run,
                benchmark=list(built_benchmarks(config)),
            ),
            "text": f"results/eval/{run}/text.json",
        }
        for run in built_runs(config)
    }


def compare_files(wildcards):
    return [
        path
        for run in compared_runs().values()
        for path in [*run["evals"], run["text"]]
    ]


def compare_params(wildcards):
    return {"runs": compared_runs()}


# --- the default target ---


def final_outputs():
    """The default target: every vocabulary of vocab.thresholds, and each run of build.runs
    trained (with the embeddings it was trained on), evaluated on build.benchmarks and
    summarised when build.evaluate is on, with the runs compared side by side."""
    runs = list(built_runs(config))
    outputs = expand(
        "results/vocab/ft{threshold}.{ext}",
        threshold=config["vocab"]["thresholds"],
        ext=["parquet", "stats.json"],
    )
    outputs += expand(
        "results/models/{run}/{name}", run=runs, name=["decoder.pt", "metrics.jsonl"]
    )
    # The embeddings a model was trained on are targets too: a deleted shard is rebuilt (and
    # what was trained on it re-runs) instead of passing as done.
    for run in runs:
        outputs += run_shards(run) + list(run_heldout(run).values())
    if config["build"]["evaluate"]:
        names = [*built_benchmarks(config), "text"]
        outputs += expand("results/eval/{run}/{name}.json", run=runs, name=names)
        outputs += [path for run in runs for path in open_vocab_files(run)]
        outputs += expand("results/report/{run}/metrics.csv", run=runs)
        outputs += ["results/report/runs.csv"] if runs else []
    return outputs
