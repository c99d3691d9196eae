"""Configuration: fill defaults from the JSON schema, validate, and name every bad key."""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """A configuration that does not match the schema; the message names each bad key."""


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) schema file."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def fill_defaults(config: MutableMapping[str, Any], schema: dict[str, Any]) -> None:
    """Insert the schema's `default` values for missing keys, recursively, in place."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        value = config.get(key)
        if isinstance(value, MutableMapping):
            fill_defaults(value, sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in config.items():
            if key not in schema.get("properties", {}) and isinstance(value, MutableMapping):
                fill_defaults(value, extra)


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


def validate_config(
    config: MutableMapping[str, Any], schema: str | Path | dict[str, Any]
) -> MutableMapping[str, Any]:
    """Fill defaults into `config` and validate it; raise ConfigError listing every problem."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    fill_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        line
        for error in sorted(
            validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]
        )
        for line in _describe(error)
    ]
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return config
