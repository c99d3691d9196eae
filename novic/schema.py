"""The config schema (novic/config.schema.yaml): the one source of defaults and value ranges.

Keys marked `runtime: true` change how a job runs (batch sizes, chunking, request concurrency,
checkpoint frequency, cache folders) but not what it makes: they are never rule params, so
changing them re-runs nothing. A section is named by its dotted key path ("captions.requests");
`*` stands for any entry of a named catalog ("runs.*.train").
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Mapping, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names each bad key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read a YAML (or JSON) schema file."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


@cache
def _schema() -> dict[str, Any]:
    return load_schema(SCHEMA_PATH)


def schema() -> dict[str, Any]:
    """The pipeline's config schema (a fresh copy)."""
    return copy.deepcopy(_schema())


def section_schema(section: str, root: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schema of a dotted section path; `*` is any entry of a named catalog."""
    node: Mapping[str, Any] = _schema() if root is None else root
    for part in section.split(".") if section else []:
        if part == "*":
            node = node.get("additionalProperties") or {}
        else:
            node = node.get("properties", {}).get(part) or node.get("additionalProperties") or {}
        if not node:
            raise KeyError(f"the config schema has no section {section!r}")
    return dict(node)


def lookup(config: Mapping[str, Any], section: str) -> Any:
    """The value at a dotted key path ("runs.tiny_ft9.train")."""
    node: Any = config
    for part in section.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{section}: no such key in the configuration")
        node = node[part]
    return node


def _merge_missing(value: MutableMapping[str, Any], default: Mapping[str, Any]) -> None:
    for key, item in default.items():
        if key not in value:
            value[key] = copy.deepcopy(item)
        elif isinstance(value[key], MutableMapping) and isinstance(item, Mapping):
            _merge_missing(value[key], item)


def fill_defaults(config: MutableMapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Insert the schema's `default` values for missing keys, recursively, in place.

    A mapping default (a catalog such as captions.llms) fills in the entries and keys a config
    leaves out, the way Snakemake merges config files: a preset can change one key of a default
    entry.
    """
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub:
            if key not in config:
                config[key] = copy.deepcopy(sub["default"])
            elif isinstance(config[key], MutableMapping) and isinstance(sub["default"], Mapping):
                _merge_missing(config[key], sub["default"])
        value = config.get(key)
        if isinstance(value, MutableMapping):
            fill_defaults(value, sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in config.items():
            if key not in schema.get("properties", {}) and isinstance(value, MutableMapping):
                fill_defaults(value, extra)


def defaults(section: str = "") -> dict[str, Any]:
    """The schema's defaults of a section (the whole config for "")."""
    values: dict[str, Any] = {}
    fill_defaults(values, section_schema(section))
    return values


def schema_defaults(section: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: a frozen dataclass whose field defaults are the schema's for `section`.

    Fields without a schema default (sizes fixed by the data, required keys) come first in the
    class body and have no default.
    """

    def wrap(cls: type[T]) -> type[T]:
        values = defaults(section)
        for name in inspect.get_annotations(cls):
            if name in values:
                value = values[name]
                if isinstance(value, (list, dict)):
                    setattr(
                        cls,
                        name,
                        dataclasses.field(default_factory=lambda v=value: copy.deepcopy(v)),
                    )
                else:
                    setattr(cls, name, value)
        cls.SECTION = section  # type: ignore[attr-defined]
        return dataclasses.dataclass(frozen=True)(cls)

    return wrap


def runtime_keys(section: str) -> set[str]:
    """The keys of a section marked `runtime: true` in the schema (none for free-form maps)."""
    try:
        props = section_schema(section).get("properties", {})
    except KeyError:
        return set()
    return {key for key, sub in props.items() if sub.get("runtime")}


def without_runtime(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A section's values without its runtime-only keys, at any depth: what results depend on."""
    runtime = runtime_keys(section)
    return {
        key: without_runtime(value, f"{section}.{key}") if isinstance(value, Mapping) else value
        for key, value in values.items()
        if key not in runtime
    }


def runtime_values(values: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A section's runtime-only keys and their values (all of them where the section itself is
    marked, as captions.requests is)."""
    if section_schema(section).get("runtime"):
        return dict(values)
    runtime = runtime_keys(section)
    return {key: value for key, value in values.items() if key in runtime}
