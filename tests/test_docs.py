"""The documentation: the generated configuration reference is in sync with the schema, the
README stays a front page, and every relative link points to a file that exists."""

import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import load_tool

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REFERENCE = DOCS / "configuration.md"
SCHEMA = ROOT / "novic" / "config.schema.yaml"
README_MAX_LINES = 250

# [text](target) and ![alt](target), the target up to a space (a title) or the closing bracket.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def config_reference() -> ModuleType:
    """tools/config_reference.py."""
    return load_tool("config_reference")


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_configuration_reference_matches_schema() -> None:
    expected = config_reference().render(load_schema())
    actual = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert actual == expected, (
        "docs/configuration.md is out of date with novic/config.schema.yaml: run `make docs` "
        "(python tools/config_reference.py) and commit the result."
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = config_reference()
    output = tmp_path / "configuration.md"
    assert tool.main(["--check", "--output", str(output)]) == 1
    assert "make docs" in capsys.readouterr().err
    assert tool.main(["--output", str(output)]) == 0
    assert tool.main(["--check", "--output", str(output)]) == 0


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move details into docs/."
    )


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        file = target.split("#", 1)[0].split("?", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_reference_names_every_section_and_its_keys() -> None:
    tool = config_reference()
    schema = load_schema()
    text = REFERENCE.read_text(encoding="utf-8")
    walker = tool.Walker(schema)
    missing = []
    for key, node in walker.properties(walker.resolve(schema)).items():
        node = walker.resolve(node)
        if f"## {key}\n" not in text:
            missing.append(key)
        children = list(walker.properties(node))
        if walker.catalog(node) is not None:
            children.append(tool.NAME)
        missing += [f"{key}.{child}" for child in children if f"`{key}.{child}`" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}: run `make docs`."


def test_render_marks_runtime_only_keys_and_walks_catalogs() -> None:
    schema = {
        "type": "object",
        "$defs": {"names": {"type": "array", "items": {"type": "string"}, "default": []}},
        "properties": {
            "build": {
                "description": "What is built.",
                "type": "object",
                "default": {},
                "properties": {"runs": {"$ref": "#/$defs/names", "description": "Runs."}},
            },
            "jobs": {
                "type": "object",
                "default": {},
                "properties": {
                    "batch_size": {"type": "integer", "minimum": 1, "default": 8, "runtime": True},
                    "seed": {"type": "integer", "default": 0},
                },
            },
            "runs": {
                "type": "object",
                "default": {},
                "additionalProperties": {
                    "type": "object",
                    "required": ["lr"],
                    "properties": {"lr": {"type": "number", "exclusiveMinimum": 0}},
                },
            },
        },
    }
    text = config_reference().render(schema)
    assert "## build\n\nWhat is built." in text
    assert "| `build.runs` | list of string | `[]` | Runs. |" in text
    assert "| `jobs.batch_size` (runtime-only) | integer ≥ 1 | `8` |" in text
    assert "| `jobs.seed` | integer | `0` |" in text
    assert "| `runs.NAME.lr` | number > 0 | *required* |" in text
