"""Configuration: validation against the schema and every rule that relates several keys.

`validate_config(config)` fills in the schema's defaults (novic.schema), validates, and runs
`check(config)`; both report every problem at once in one ConfigError, each line naming its
key path. The Snakefile calls it once, before any DAG is built; rule files then only look up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import jsonschema

from novic.datasets import KIND_FILES, LAYOUTS
from novic.embedders import parse_spec
from novic.schema import ConfigError, _schema, fill_defaults, load_schema
from novic.settings import (
    AnnotateSettings,
    BenchmarkSettings,
    GenConfig,
    GenerateSettings,
    LLMSettings,
    SampleSettings,
    validate_run,
)

__all__ = ["ConfigError", "check", "validate_config"]

RESERVED_BENCHMARKS = ("text",)  # results/eval/{run}/text.json is the text side
MAX_VALUES = 200_000  # far above any real config; a YAML alias bomb expands past it


def _key_path(path: Iterator[Any] | Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _describe(error: jsonschema.ValidationError) -> list[str]:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = "" if where == "<top level>" else where + "."
        return [
            f"{prefix}{key}: unknown key (allowed here: {', '.join(allowed)})" for key in unknown
        ]
    return [f"{where}: {error.message}"]


def _check_size(config: Mapping[str, Any], limit: int = MAX_VALUES) -> None:
    """Refuse a config of more than `limit` values, counting every alias of a YAML anchor
    where it is used (an alias bomb), before anything walks it."""
    count, stack = 0, [("", config)]
    while stack:
        path, value = stack.pop()
        count += 1
        if count > limit:
            where = path.split("[")[0] or "<top level>"
            raise ConfigError(
                f"{where}: the configuration holds more than {limit:,} values "
                "(a YAML anchor expanded many times?)"
            )
        if isinstance(value, Mapping):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def validate_config(
    config: MutableMapping[str, Any], schema: str | Path | Mapping[str, Any] | None = None
) -> MutableMapping[str, Any]:
    """Fill defaults into `config`, validate it against the schema, then `check` it.

    Raises ConfigError listing every problem, each with its key path.
    """
    _check_size(config)
    if schema is None:
        schema = _schema()
    elif not isinstance(schema, Mapping):
        schema = load_schema(schema)
    fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    _raise([line for error in errors for line in _describe(error)])
    _raise(check(config))
    return config


def _catch(problems: list[str], prefix: str, build: Callable[..., object], *args: Any) -> None:
    """Call one settings constructor; a ValueError becomes a problem line under `prefix`."""
    try:
        build(*args)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        problems.append(message if not prefix or message.startswith(prefix) else prefix + message)


def built_runs(config: Mapping[str, Any]) -> dict[str, Any]:
    """The runs `rule all` builds (build.runs), name -> settings."""
    return {name: config["runs"][name] for name in config["build"]["runs"]}


def built_benchmarks(config: Mapping[str, Any]) -> dict[str, Any]:
    """The benchmarks every built run is evaluated on (none when build.evaluate is off)."""
    if not config["build"]["evaluate"]:
        return {}
    return {name: config["eval"]["benchmarks"][name] for name in config["build"]["benchmarks"]}


def made_multisets(config: Mapping[str, Any]) -> list[str]:
    """Names (m1, m2, m3) of the prompt multisets prompts.multiset_freq makes."""
    return [f"m{m}" for m, freq in enumerate(config["prompts"]["multiset_freq"], 1) if freq]


def _check_build(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, catalog, where in (
        ("runs", config["runs"], "runs"),
        ("benchmarks", config["eval"]["benchmarks"], "eval.benchmarks"),
    ):
        for name in config["build"][key]:
            if name not in catalog:
                problems.append(
                    f"build.{key}: {name!r} is not an entry of {where} (known: {sorted(catalog)})"
                )
    return problems


def _check_captions(config: Mapping[str, Any]) -> list[str]:
    captions, problems = config["captions"], []
    if captions["llm"] not in captions["llms"]:
        problems.append(
            f"captions.llm: {captions['llm']!r} is not an entry of captions.llms "
            f"(known: {sorted(captions['llms'])})"
        )
    for name, llm in captions["llms"].items():
        _catch(problems, "", LLMSettings.from_config, name, llm)
    _catch(problems, "", GenerateSettings.from_config, captions["generate"])
    _catch(problems, "captions.sample.", SampleSettings.from_config, captions["sample"])
    return problems


def _check_runs(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, spec in config["embedders"].items():
        _catch(problems, "", parse_spec, spec, key)
    for name, run in config["runs"].items():
        if run["embedder"] not in config["embedders"]:
            problems.append(
                f"runs.{name}.embedder: {run['embedder']!r} is not an entry of embedders "
                f"(known: {sorted(config['embedders'])})"
            )
        _catch(problems, "", validate_run, name, run)
    return problems


def _check_eval(config: Mapping[str, Any]) -> list[str]:
    evaluation, problems = config["eval"], []
    for key in ("gencfg", "class_gencfg"):
        _catch(problems, f"eval.{key}: ", GenConfig.parse, evaluation[key])
    for name, bench in evaluation["benchmarks"].items():
        where = f"eval.benchmarks.{name}"
        if name in RESERVED_BENCHMARKS:
            problems.append(f"{where}: the name {name!r} is reserved for the text-side results")
        _catch(problems, f"{where}: ", BenchmarkSettings.from_config, name, bench)
    annotate = evaluation["annotate"]
    _catch(problems, "eval.annotate.", AnnotateSettings.from_config, annotate)
    llms = config["captions"]["llms"]
    if annotate["llm"] and annotate["llm"] not in llms:
        problems.append(
            f"eval.annotate.llm: {annotate['llm']!r} is not an entry of captions.llms "
            f"(known: {sorted(llms)})"
        )
    return problems


def _missing(key: str, path: str, what: str) -> list[str]:
    return [] if Path(path).is_file() else [f"{key}: {what} {path} does not exist"]


def _check_files(config: Mapping[str, Any]) -> list[str]:
    """The files every build reads exist (not only at job time)."""
    nouns, problems = config["nouns"], []
    problems += _missing("nouns.rules", nouns["rules"], "synset rules file")
    problems += _missing("nouns.homographs", nouns["homographs"], "homographs file")
    problems += _missing("nouns.plural_only", nouns["plural_only"], "word list")
    for key in ("class_lists", "general_lists"):
        for i, path in enumerate(nouns[key]):
            problems += _missing(f"nouns.{key}[{i}]", path, "class list")
    source = nouns["source"]
    if source["kind"] == "reference":
        if not source["path"]:
            problems.append(
                "nouns.source.path: kind reference needs the path of the reference's "
                "object-noun dictionary (object_nouns.json); it is never downloaded"
            )
        else:
            problems += _missing("nouns.source.path", source["path"], "noun dictionary")
    problems += _missing("prompts.templates", config["prompts"]["templates"], "templates file")
    return problems


def _check_built(config: Mapping[str, Any]) -> list[str]:
    """What rule all builds can be built: each built run's vocabulary, multisets and embedder
    weights, each selected benchmark's data folder and files (build names known)."""
    problems = []
    thresholds, multisets = config["vocab"]["thresholds"], made_multisets(config)
    runs = built_runs(config)
    for name, run in runs.items():
        if run["threshold"] not in thresholds:
            problems.append(
                f"runs.{name}.threshold: {run['threshold']} is not in vocab.thresholds {thresholds}"
            )
        for source, weight in run["mix"].items():
            if weight > 0 and source != "captions" and source not in multisets:
                problems.append(
                    f"runs.{name}.mix.{source}: multiset {source} is not made "
                    f"(prompts.multiset_freq is {config['prompts']['multiset_freq']})"
                )
    for name, bench in built_benchmarks(config).items():
        root = Path(bench["root"])
        if not root.is_dir():
            problems.append(
                f"eval.benchmarks.{name}.root: folder {root} does not exist (benchmark {name!r}"
                f" of build.benchmarks, kind {bench['kind']}: expected {LAYOUTS[bench['kind']]})"
            )
        for key in ("classes", "annotations", "specificity"):
            if bench[key]:
                problems += _missing(f"eval.benchmarks.{name}.{key}", bench[key], "file")
        for path in KIND_FILES.get(bench["kind"], ()):
            problems += _missing(
                f"eval.benchmarks.{name}.kind", path, f"{bench['kind']} metadata file"
            )
    used = {run["embedder"] for run in runs.values()} & set(config["embedders"])
    for key in sorted(used):
        spec = config["embedders"][key]
        if "checkpoint" in spec:
            problems += _missing(f"embedders.{key}.checkpoint", spec["checkpoint"], "weights file")
        elif "locked_text" in spec:  # rule train_image_tower reads these
            tower = spec["locked_text"]
            problems += _missing(f"embedders.{key}.locked_text.classes", tower["classes"], "file")
            if not Path(tower["root"]).is_dir():
                problems.append(
                    f"embedders.{key}.locked_text.root: folder {tower['root']} does not exist "
                    f"(expected {LAYOUTS['fashion_mnist']})"
                )
    return problems


def check(config: Mapping[str, Any]) -> list[str]:
    """Every rule that relates several keys of a defaults-filled, schema-valid config.

    Returns the problems, each naming its key path (validate_config raises them together).
    """
    build = _check_build(config)
    problems = (
        build
        + _check_captions(config)
        + _check_runs(config)
        + _check_eval(config)
        + _check_files(config)
    )
    return problems if build else problems + _check_built(config)
