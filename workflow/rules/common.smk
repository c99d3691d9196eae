import re
from pathlib import Path

from novic.config import validate_config
from novic.decoding import GenConfig, GenConfigError
from novic.textdata import shard_name

validate_config(
    config, Path(workflow.basedir) / "novic/config.schema.yaml"
)


# --- Nouns ---


def vocab_files():
    """Every thresholded vocabulary the config asks for, with its stats."""
    thresholds = config["vocab"]["thresholds"]
    return expand(
        "results/vocab/ft{threshold}.{ext}",
        threshold=thresholds,
        ext=["parquet", "stats.json"],
    )


# --- Multiset prompts ---


def prompt_multisets():
    """The multiset sizes m the config asks for (prompts.multiset_freq[m-1] > 0)."""
    freqs = config["prompts"]["multiset_freq"]
    return [m for m, freq in enumerate(freqs, 1) if freq > 0]


def prompt_shard_names():
    """File names of the training shards of one Mm."""
    return [shard_name(k) for k in range(config["prompts"]["shards"])]


def prompt_outputs():
    """Every prompt file the default target needs: each vocabulary threshold T and multiset size m."""
    names = prompt_shard_names() + ["heldout.parquet", "stats.json"]
    return expand(
        "results/prompts/ft{threshold}/m{m}/{name}",
        threshold=config["vocab"]["thresholds"],
        m=prompt_multisets(),
        name=names,
    )


def prompt_params(wildcards):
    """The settings one Mm depends on: another m's frequency does not re-run it."""
    prompts = config["prompts"]
    keys = ["collections", "seed", "heldout", "heldout_rows", "fraction"]
    settings = {key: prompts[key] for key in keys}
    settings["freq"] = prompts["multiset_freq"][int(wildcards.m) - 1]
    return settings


# --- Evaluation and report ---

EVAL_RESERVED = ("text",)


def eval_benchmarks():
    """The enabled entries of eval.benchmarks (name -> settings)."""
    out = {}
    for name, bench in config["eval"]["benchmarks"].items():
        if name in EVAL_RESERVED:
            raise ValueError(
                f"eval.benchmarks.{name}: {name!r} is reserved for the text-side results"
            )
        if bench["enabled"]:
            out[name] = bench
    return out


def benchmark_pattern():
    """Wildcard constraint: exactly the enabled benchmark names."""
    names = [re.escape(name) for name in eval_benchmarks()]
    return "|".join(names) if names else "(?!)"


def check_eval():
    """Generation configs must make sense, not only parse (before any job runs)."""
    for key in ("gencfg", "class_gencfg"):
        try:
            GenConfig.parse(config["eval"][key])
        except GenConfigError as error:
            raise ValueError(f"eval.{key}: {error}") from None


def eval_outputs():
    """What the default target needs for evaluation: every (run, benchmark), the text side, the report."""
    check_eval()
    if not config["eval"]["enabled"]:
        return []
    runs = list(active_runs())
    return expand(
        "results/eval/{run}/{name}.json", run=runs, name=[*eval_benchmarks(), "text"]
    ) + expand("results/report/{run}/metrics.csv", run=runs)


def benchmark_files(wildcards):
    """A benchmark's class list, annotation and specificity files (changing one re-runs it)."""
    bench = eval_benchmarks()[wildcards.benchmark]
    keys = ("classes", "annotations", "specificity")
    return [bench[key] for key in keys if bench[key]]


def eval_params(wildcards):
    """What one (run, benchmark) result depends on; batch_size is read by the script."""
    ignored = ("enabled", "benchmarks", "batch_size")
    settings = {k: v for k, v in config["eval"].items() if k not in ignored}
    bench = eval_benchmarks()[wildcards.benchmark]
    return {
        "benchmark": {k: v for k, v in bench.items() if k != "enabled"},
        "eval": settings,
    }


def text_params(wildcards):
    """The text side: the held-out sources of the run and the decoding settings."""
    return {
        "sources": list(run_heldout(wildcards.run)),
        "eval": {k: config["eval"][k] for k in ("gencfg", "text_rows")},
    }


def text_heldout(wildcards):
    return list(run_heldout(wildcards.run).values())


def run_eval_files(wildcards):
    return expand(
        "results/eval/{run}/{benchmark}.json",
        run=wildcards.run,
        benchmark=list(eval_benchmarks()),
    )


# --- LLM captions ---


def caption_llm(name):
    """The settings of LLM `name` from captions.llms, with a clear error for unknown names."""
    llms = config["captions"]["llms"]
    if name not in llms:
        raise ValueError(f"captions.llms has no entry {name!r} (known: {sorted(llms)})")
    return llms[name]


def caption_shards():
    return [f"{i:03d}" for i in range(config["captions"]["shards"])]


def caption_sample_names():
    return [shard_name(k) for k in range(config["captions"]["sample"]["parts"])]


def caption_outputs():
    """What the default target needs for captions: the configured LLM's samples for every vocabulary."""
    if not config["captions"]["enabled"]:
        return []
    return expand(
        "results/captions/{llm}/ft{threshold}/{name}",
        llm=config["captions"]["llm"],
        threshold=config["vocab"]["thresholds"],
        name=[*(f"samples/{n}" for n in caption_sample_names()), "captions.stats.json"],
    )


def caption_generate_params(wildcards):
    """Everything that determines the replies (request knobs and caps are read by the script)."""
    return {
        "name": wildcards.llm,
        "llm": caption_llm(wildcards.llm),
        "generate": config["captions"]["generate"],
        "shards": config["captions"]["shards"],
    }


def caption_filter_params(wildcards):
    return {
        "generate": config["captions"]["generate"],
        "filter": config["captions"]["filter"],
    }


def caption_threads(wildcards):
    """The embedded server computes; remote backends only wait on the network."""
    return 4 if caption_llm(wildcards.llm)["backend"] == "local" else 1


# --- CLIP embeddings and training mixes ---


def embedder_spec(key):
    """The spec of embedder `key`, with a clear error for unknown keys."""
    embedders = config["embedders"]
    if key not in embedders:
        raise ValueError(f"embedders has no entry {key!r} (known: {sorted(embedders)})")
    return embedders[key]


def active_runs():
    """The enabled runs, each checked against the stages it needs."""
    runs = {name: run for name, run in config["runs"].items() if run["enabled"]}
    for name, run in runs.items():
        embedder_spec(run["embedder"])
        if run["threshold"] not in config["vocab"]["thresholds"]:
            raise ValueError(
                f"runs.{name}.threshold: {run['threshold']} is not in vocab.thresholds "
                f"{config['vocab']['thresholds']}"
            )
        for source, weight in run["mix"].items():
            if (
                weight > 0
                and source == "captions"
                and not config["captions"]["enabled"]
            ):
                raise ValueError(
                    f"runs.{name}.mix.captions needs captions.enabled: true"
                )
            if weight > 0 and source != "captions" and source not in mix_multisets():
                raise ValueError(
                    f"runs.{name}.mix.{source}: multiset {source} is not made "
                    f"(prompts.multiset_freq is {config['prompts']['multiset_freq']})"
                )
    return runs


def mix_multisets():
    return [
        f"m{m}" for m, freq in enumerate(config["prompts"]["multiset_freq"], 1) if freq
    ]


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


def run_sources(run):
    """Source name -> embedding shards of a run's mix (weights > 0 only)."""
    r = active_runs()[run]
    return {
        source: [
            f"results/embeddings/{r['embedder']}/{texts}.parquet"
            for texts in source_texts(source, r["threshold"])
        ]
        for source, weight in r["mix"].items()
        if weight > 0
    }


def run_heldout(run):
    """Held-out rows of the run's sources: prompts of held-out templates and captions of
    held-out caption templates (validation data for training, the text-side evaluation).
    """
    r = active_runs()[run]
    return {
        source: f"results/embeddings/{r['embedder']}/{source_dataset(source, r['threshold'])}/heldout.parquet"
        for source, weight in r["mix"].items()
        if weight > 0
    }


def run_mix_shards(wildcards):
    return [path for paths in run_sources(wildcards.run).values() for path in paths]


def embedding_outputs():
    """What the default target needs for this stage: the mix manifest of every enabled run."""
    return expand("results/models/{run}/mix.json", run=active_runs())


def embedder_checkpoint(wildcards):
    """A local weights file is an input: replacing it re-embeds."""
    spec = embedder_spec(wildcards.embedder)
    return [spec["checkpoint"]] if "checkpoint" in spec else []


def embed_params(wildcards):
    """What the embeddings depend on (batch size and chunking are read by the script)."""
    settings = config["embeddings"]
    return {
        "embedder": wildcards.embedder,
        "spec": embedder_spec(wildcards.embedder),
        "dtype": settings["dtype"],
        "seed": settings["seed"],
        "autocast": settings["autocast"],
    }


def prepare_params(wildcards):
    return {"embedder": wildcards.embedder, "spec": embedder_spec(wildcards.embedder)}


def mix_vocab(wildcards):
    return f"results/vocab/ft{active_runs()[wildcards.run]['threshold']}.parquet"


def mix_embedder(wildcards):
    return f"results/embedders/{active_runs()[wildcards.run]['embedder']}.json"


def mix_heldout(wildcards):
    return list(run_heldout(wildcards.run).values())


def mix_params(wildcards):
    run = active_runs()[wildcards.run]
    return {
        "run": wildcards.run,
        "embedder": run["embedder"],
        "threshold": run["threshold"],
        "mix": {source: weight for source, weight in run["mix"].items() if weight > 0},
        "sources": run_sources(wildcards.run),
        "heldout": run_heldout(wildcards.run),
    }


# --- Decoder training ---


def model_outputs():
    """What the default target needs for training: every enabled run's decoder and metrics."""
    return expand(
        "results/models/{run}/{name}",
        run=active_runs(),
        name=["decoder.pt", "metrics.jsonl"],
    )


def train_params(wildcards):
    """Everything a run's decoder depends on (RUNTIME_KEYS such as checkpoint_every are read
    by the script)."""
    run = active_runs()[wildcards.run]
    return {
        "embedder": run["embedder"],
        "embedder_spec": embedder_spec(run["embedder"]),
        "threshold": run["threshold"],
        "mix": {source: weight for source, weight in run["mix"].items() if weight > 0},
        "model": run["model"],
        "noise": run["noise"],
        "train": {k: v for k, v in run["train"].items() if k not in RUNTIME_KEYS},
    }


def final_outputs():
    """The default target: the end product of every stage the config enables."""
    return vocab_files() + prompt_outputs() + caption_outputs() + eval_outputs()
