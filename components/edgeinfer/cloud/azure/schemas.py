"""The SchemaStore IoT Edge deployment schemas, resolved locally.

They are not shipped with edgeinfer: pass their folder (``--schemas``) or set ``EDGEINFER_SCHEMAS_DIR``
(its ``azure-iot-edge/`` subfolder); without them the manifest still gets the project's own checks. The
files mix draft-04 and draft-07 and refer to each other by ``https://json.schemastore.org/<file>``: every
reference resolves to the local copy, nothing is fetched.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

BASE_URI = "https://json.schemastore.org/"
#: manifest part -> schema file: the whole document, then each system module's twin on its own
DEPLOYMENT = "azure-iot-edge-deployment-2.0.json"
EDGE_AGENT = "azure-iot-edgeagent-deployment-1.1.json"
EDGE_HUB = "azure-iot-edgehub-deployment-1.2.json"
TEMPLATE = "azure-iot-edge-deployment-template-4.0.json"


def schema_dir(explicit: str | Path | None = None) -> Path | None:
    """``explicit`` > $EDGEINFER_SCHEMAS_DIR/azure-iot-edge; None when neither is given. Nothing is looked for
    beside the checkout."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if env := os.environ.get("EDGEINFER_SCHEMAS_DIR"):
        candidates.append(Path(env) / "azure-iot-edge")
    return next((c for c in candidates if (c / DEPLOYMENT).is_file()), None)


@lru_cache(maxsize=4)
def _load(folder: str) -> tuple[dict[str, Any], Any]:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas: dict[str, Any] = {}
    resources = []
    for path in sorted(Path(folder).glob("*.json")):
        contents = json.loads(path.read_text())
        schemas[path.name] = contents
        resource = Resource.from_contents(contents, default_specification=DRAFT4)
        resources.append((BASE_URI + path.name, resource))
    return schemas, Registry().with_resources(resources)


def schema_errors(doc: Any, name: str, folder: Path) -> list[str]:
    """Validation errors of ``doc`` against schema file ``name`` (one line each, with the JSON path)."""
    from jsonschema.validators import validator_for

    schemas, registry = _load(str(folder))
    schema = schemas[name]
    validator = validator_for(schema)(schema, registry=registry)
    return [f"{name}: {'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
