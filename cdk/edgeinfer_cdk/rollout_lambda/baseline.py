"""Keep the fleet's baseline components (disk spooler, ...) in a deployment plan.

A Greengrass deployment replaces its target's component set; ``edgeinfer aws deploy`` starts from the
target's current deployment, so the baseline survives once it is there. This puts it there: a
component the plan lacks is added as the baseline pins it; one it has keeps its version (the nucleus
is never up- or downgraded behind the operator's back) and gets the baseline's configuration keys
merged over its own (other keys stay).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from edgeinfer.core.config import deep_merge


def apply_baseline(components: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]]) -> list[str]:
    """Update ``components`` in place; returns the names that were added or changed."""
    changed: list[str] = []
    for name, spec in baseline.items():
        have = components.get(name)
        if have is None:
            components[name] = copy.deepcopy(spec)
            changed.append(name)
            continue
        want = (spec.get("configurationUpdate") or {}).get("merge")
        if not want:
            continue
        update = dict(have.get("configurationUpdate") or {})
        merged = deep_merge(json.loads(update.get("merge") or "{}"), json.loads(want))
        if merged != json.loads(update.get("merge") or "{}"):
            update["merge"] = json.dumps(merged, separators=(",", ":"))
            components[name] = {**have, "configurationUpdate": update}
            changed.append(name)
    return changed
