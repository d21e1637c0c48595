"""Recipe files: YAML out (scripts as literal blocks), YAML or JSON in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (lifecycle scripts) as literal blocks; everything else as safe_dump does."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def to_yaml(recipe: dict[str, Any]) -> str:
    return "---\n" + yaml.dump(recipe, Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


def to_json(recipe: dict[str, Any]) -> str:
    return json.dumps(recipe, separators=(",", ":"))


def recipe_filename(recipe: dict[str, Any]) -> str:
    return f"{recipe['ComponentName']}-{recipe['ComponentVersion']}.yaml"


def load_recipe(path: Path) -> tuple[dict[str, Any], str]:
    """(recipe, its text). JSON is YAML, so one parser reads both."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}", "pass an existing recipe file") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}",
                          "fix the syntax") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must hold a mapping at the top level", "start from a rendered recipe")
    return data, text
