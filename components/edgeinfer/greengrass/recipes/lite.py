"""What Greengrass Lite (2.6) does with a recipe, checked ahead of a deployment.

Read from its source (modules/ggl-recipe/src/recipe.c, modules/recipe-runner/src/runner.c,
modules/recipe2unit/src/unit_file_generator.c) and confirmed by the real-nucleus tier (tests/greengrass_lite):

* a manifest counts only when its Platform names ``runtime: aws_nucleus_lite`` or ``"*"``; other Platform
  attributes than os/architecture are ignored;
* lifecycle phases are matched in lower case (``install``, ``run``, ``startup``); ``Skipif`` is ignored;
* recipe variables: ``{artifacts:path|decompressedPath}``, ``{work:path}``, ``{kernel:rootPath}``,
  ``{iot:thingName}``, ``{configuration:/...}``; a ``{<other component>:...}`` variable fails the phase;
* the recipe file is read into 8196 bytes (the cloud hands it over as JSON).
"""

from __future__ import annotations

import re
from typing import Any

from .io import to_json

MAX_LITE_RECIPE_BYTES = 8196
LITE_RUNTIMES = ("aws_nucleus_lite", "*")
LITE_VARIABLES = re.compile(r"^(artifacts:(path|decompressedPath)|work:path|kernel:rootPath|iot:thingName|"
                            r"configuration:/.*)$")
VARIABLE = re.compile(r"\{([^{}\s]+)\}")


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
    size = len(to_json(recipe).encode())
    if size > MAX_LITE_RECIPE_BYTES:
        problems.append(f"the recipe is {size} bytes as JSON; Greengrass Lite reads at most {MAX_LITE_RECIPE_BYTES}: "
                        "render it for the device's platform only (edgeinfer greengrass render --platform ...)")
    return problems
