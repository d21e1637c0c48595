"""Greengrass recipes: rendered from templates, checked by the project's rules and (when present)
the Greengrass recipe schema."""

from .checks import MAX_RECIPE_BYTES, check_recipe, recipe_problems
from .info import ModelPackageInfo
from .io import load_recipe, recipe_filename, to_json, to_yaml
from .render import (
    InferenceOptions,
    greengrass_defaults,
    model_artifact_key,
    render_inference,
    render_model,
    runtime_artifact_key,
    write_recipes,
)

__all__ = [
    "MAX_RECIPE_BYTES", "InferenceOptions", "ModelPackageInfo", "check_recipe", "greengrass_defaults",
    "load_recipe", "model_artifact_key", "recipe_filename", "recipe_problems", "render_inference", "render_model",
    "runtime_artifact_key", "to_json", "to_yaml", "write_recipes",
]
