"""What Greengrass Lite (2.6) does with a recipe, checked ahead of a deployment.

Read from its source (modules/ggl-recipe/src/recipe.c, modules/recipe-runner/src/runner.c,
modules/recipe2unit/src/unit_file_generator.c) and confirmed by the real-nucleus tier (tests/greengrass_lite):

* a manifest counts only when its Platform names ``runtime: aws_nucleus_lite`` or ``"*"``; other Platform
  attributes than os/architecture are ignored;
* lifecycle phases are matched in lower case (``install``, ``run``, ``startup``); ``Skipif`` is ignored;
* recipe variables: ``{artifacts:path|decompressedPath}``, ``{work:path}``, ``{kernel:rootPath}``,
  ``{iot:thingName}``, ``{configuration:/...}``; a ``{<other component>:...}`` variable fails the phase;
* the recipe file is read into 8196 bytes (the cloud hands it over as JSON), and decoded as one object of at
  most 255 values (GG_MAX_OBJECT_SUBOBJECTS: a map's pair counts two, a list's item one): a recipe over it
  fails with "Visited object's subobjects exceeds maximum" and the component never starts.
"""

from __future__ import annotations

import re
from typing import Any

from .io import to_json

MAX_LITE_RECIPE_BYTES = 8196
MAX_LITE_SUBOBJECTS = 255
LITE_RUNTIMES = ("aws_nucleus_lite", "*")
LITE_VARIABLES = re.compile(r"^(artifacts:(path|decompressedPath)|work:path|kernel:rootPath|iot:thingName|"
                            r"configuration:/.*)$")
VARIABLE = re.compile(r"\{([^{}\s]+)\}")


def lite_values(node: Any) -> int:
    """How many values Greengrass Lite counts in ``node`` (a map's pair two, a list's item one, nested)."""
    if isinstance(node, dict):
        return 2 * len(node) + sum(lite_values(v) for v in node.values())
    if isinstance(node, list):
        return len(node) + sum(lite_values(v) for v in node)
    return 0


def lite_manifests(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifests Greengrass Lite may select, in order."""
    return [m for m in recipe.get("Manifests") or []
            if isinstance(m, dict) and (m.get("Platform") or {}).get("runtime") in LITE_RUNTIMES]


def lite_problems(recipe: dict[str, Any]) -> list[str]:
    """Why Greengrass Lite would not run this recipe as the Java nucleus does; [] when it would."""
    problems = []
    manifests = lite_manifests(recipe)
    if not manifests:
        problems.append("no manifest names Platform.runtime '*' or 'aws_nucleus_lite': Greengrass Lite selects none")
    for m in manifests:
        where = f"manifest {m.get('Name', '?')}"
        for phase, step in (m.get("Lifecycle") or {}).items():
            if phase != "Setenv" and phase != phase.lower():
                problems.append(f"{where}: lifecycle phase {phase!r}: Greengrass Lite matches {phase.lower()!r} only")
            text = step if isinstance(step, str) else to_json(step)
            for var in VARIABLE.findall(text):
                if ":" in var and not LITE_VARIABLES.match(var):
                    problems.append(f"{where}: {phase} uses {{{var}}}, which Greengrass Lite does not resolve")
    values = lite_values(recipe)
    if values > MAX_LITE_SUBOBJECTS:
        problems.append(f"the recipe holds {values} values; Greengrass Lite decodes at most {MAX_LITE_SUBOBJECTS}: "
                        "render it with --minimal-defaults (the component applies the schema's defaults itself)")
    size = len(to_json(recipe).encode())
    if size > MAX_LITE_RECIPE_BYTES:
        problems.append(f"the recipe is {size} bytes as JSON; Greengrass Lite reads at most {MAX_LITE_RECIPE_BYTES}: "
                        "render it for the device's platform only (edgeinfer greengrass render --platform ...)")
    return problems
