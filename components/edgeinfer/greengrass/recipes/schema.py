"""Validation against the Greengrass recipe JSON schema (GDK's), when it and ``jsonschema`` are present.

The schema is not shipped with edgeinfer (it lives with the GDK, Apache-2.0): pass its path (``--schema``)
or set ``EDGEINFER_GREENGRASS_RECIPE_SCHEMA``. Nothing is looked for beside the checkout.
Like the GDK, keys are lower-cased before validating (draft-07). The project's own checks
(``checks.py``) are stricter and never need the schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import RecipeError

ENV = "EDGEINFER_GREENGRASS_RECIPE_SCHEMA"
SCHEMA_FILE = "recipe_schema.json"


def find_schema(explicit: Path | None = None) -> Path | None:
    """``explicit`` > $EDGEINFER_GREENGRASS_RECIPE_SCHEMA; None when neither is given."""
    if explicit is not None:
        if not explicit.is_file():
            raise RecipeError(f"recipe schema {explicit} does not exist", "pass the GDK's recipe_schema.json")
        return explicit
    if env := os.environ.get(ENV):
        if not Path(env).is_file():
            raise RecipeError(f"{ENV}={env} is not a file", "point it at the GDK's recipe_schema.json, or unset it")
        return Path(env)
    return None


def lower_keys(node: Any) -> Any:
    """What the GDK does before validating: every mapping key lower-cased, at every level."""
    if isinstance(node, dict):
        return {str(k).lower(): lower_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [lower_keys(v) for v in node]
    return node


def schema_problems(recipe: dict[str, Any], schema_path: Path) -> list[str]:
    try:
        import jsonschema
    except ImportError as exc:
        raise RecipeError("validating against the Greengrass schema needs jsonschema",
                          "pip install jsonschema, or validate without --schema") from exc
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(lower_keys(json.loads(json.dumps(recipe, default=str)))),
                    key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(x) for x in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def check_schema(recipe: dict[str, Any], schema_path: Path) -> None:
    if problems := schema_problems(recipe, schema_path):
        raise RecipeError(f"recipe {recipe.get('ComponentName', '?')} fails the Greengrass recipe schema: "
                          f"{'; '.join(problems[:10])}", "fix the fields named")
