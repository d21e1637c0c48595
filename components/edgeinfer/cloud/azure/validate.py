"""Manifest validation: the SchemaStore schemas (when present) plus the project's stricter checks.

The schemas miss what breaks deployments in practice: createOptions that are not JSON or exceed the
512-character chunks, twins over 32 KB, routes from modules that do not exist, inline registry
passwords and blob storage keys/connection strings, placeholders never filled in, and module desired
properties the module would reject.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...azure.limits import module_name_problem, twin_problems
from ...azure.modelref import split_model
from ...core import config as cfgmod
from ...core.errors import ConfigError
from . import create_options, schemas
from .blobmodule import secret_slots
from .errors import ManifestError
from .manifest import PLACEHOLDER

SECRET_REF = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")
ROUTE_SOURCE = re.compile(r"FROM\s+/messages/modules/([^/\s]+)/outputs/", re.IGNORECASE)


@dataclass
class ManifestReport:
    problems: list[str] = field(default_factory=list)
    schema_dir: Path | None = None
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self, what: str = "manifest") -> None:
        if self.problems:
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            raise ManifestError(f"invalid {what}: {self.problems[0]}{more}",
                                "run `edgeinfer azure validate FILE` to list every problem")


def _placeholders(doc: Any) -> list[str]:
    text = json.dumps(doc)
    return sorted(set(PLACEHOLDER.findall(text)))


def _module_checks(where: str, entry: dict[str, Any], problems: list[str]) -> None:
    settings = entry.get("settings")
    if not isinstance(settings, dict):
        problems.append(f"{where}: settings missing")
        return
    image = settings.get("image")
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        problems.append(f"{where}: image {image!r} is not an image reference")
    _, option_problems = create_options.decode(settings, where)
    problems.extend(option_problems)


def _agent_checks(agent: dict[str, Any], problems: list[str]) -> set[str]:
    modules = agent.get("modules") or {}
    for name, entry in modules.items():
        if problem := module_name_problem(name):
            problems.append(f"$edgeAgent.modules: {problem}")
        _module_checks(f"modules.{name}", entry, problems)
    for name, entry in (agent.get("systemModules") or {}).items():
        _module_checks(f"systemModules.{name}", entry, problems)
    creds = ((agent.get("runtime") or {}).get("settings") or {}).get("registryCredentials") or {}
    for key, cred in creds.items():
        password = cred.get("password") if isinstance(cred, dict) else None
        if not isinstance(password, str) or not SECRET_REF.match(password):
            problems.append(f"registryCredentials.{key}.password is an inline secret; manifests carry only a "
                            f"$VARIABLE reference, resolved at deploy time")
    return set(modules)


def _hub_checks(hub: dict[str, Any], modules: set[str], problems: list[str]) -> None:
    for key, route in (hub.get("routes") or {}).items():
        text = route.get("route") if isinstance(route, dict) else route
        if not isinstance(text, str):
            continue
        if (m := ROUTE_SOURCE.search(text)) and m.group(1) not in modules and m.group(1) != "*":
            problems.append(f"$edgeHub.routes.{key} reads from module {m.group(1)!r}, which the deployment lacks")
    saf = hub.get("storeAndForwardConfiguration") or {}
    ttl = saf.get("timeToLiveSecs")
    if ttl is not None and (not isinstance(ttl, int) or ttl <= 0):
        problems.append(f"$edgeHub.storeAndForwardConfiguration.timeToLiveSecs must be a positive integer, got {ttl!r}")


def _desired_checks(name: str, desired: dict[str, Any], problems: list[str]) -> None:
    try:
        _, rest = split_model(desired)
        cfgmod.validate(cfgmod.deep_merge(cfgmod.defaults_json(), rest), f"{name} desired properties")
    except ConfigError as exc:
        problems.append(exc.problem)


def check_manifest(doc: Any, module_name: str | None = "edgeinfer", schema_dir: Path | None = None) -> ManifestReport:
    """Every problem of a deployment manifest; ``module_name``'s desired properties are checked against
    the edgeinfer config schema."""
    report = ManifestReport(schema_dir=schema_dir or schemas.schema_dir())
    problems = report.problems
    if not isinstance(doc, dict) or set(doc) != {"modulesContent"} or not isinstance(doc["modulesContent"], dict):
        problems.append("a deployment manifest is {\"modulesContent\": {...}} and nothing else")
        return report
    content = doc["modulesContent"]
    if report.schema_dir is not None:
        problems += schemas.schema_errors(doc, schemas.DEPLOYMENT, report.schema_dir)
        for key, schema in (("$edgeAgent", schemas.EDGE_AGENT), ("$edgeHub", schemas.EDGE_HUB)):
            if key in content:
                problems += schemas.schema_errors({key: content[key]}, schema, report.schema_dir)
        report.checked.append(f"SchemaStore schemas in {report.schema_dir}")
    if names := _placeholders(doc):
        problems.append(f"unfilled placeholders: {', '.join('${' + n + '}' for n in names)}")
    agent = (content.get("$edgeAgent") or {}).get("properties.desired")
    hub = (content.get("$edgeHub") or {}).get("properties.desired")
    if not isinstance(agent, dict) or not isinstance(hub, dict):
        problems.append("$edgeAgent and $edgeHub each need properties.desired")
        return report
    modules = _agent_checks(agent, problems)
    for where, holder, key in secret_slots(content):
        if not isinstance(holder[key], str) or not SECRET_REF.match(holder[key]):
            problems.append(f"{where} is an inline secret; manifests carry only a $VARIABLE reference, resolved at "
                            "deploy time")
    _hub_checks(hub, modules, problems)
    for key, section in content.items():
        desired = section.get("properties.desired") if isinstance(section, dict) else None
        if not isinstance(desired, dict):
            problems.append(f"{key}: properties.desired must be an object")
            continue
        problems += twin_problems(desired, f"{key}.properties.desired")
        if key not in ("$edgeAgent", "$edgeHub") and key not in modules:
            problems.append(f"{key}: desired properties for a module the deployment lacks")
    if module_name and module_name in content:
        _desired_checks(module_name, content[module_name].get("properties.desired") or {}, problems)
    report.checked.append("edgeinfer checks: createOptions JSON and 512-character chunks, twin sizes (32 KB), "
                          "module names, routes, registry secrets, placeholders, module config schema")
    return report


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}", "pass an existing JSON file") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {path} is not JSON: {exc.msg} at line {exc.lineno}", "fix the syntax") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path} is not a JSON object", "a manifest is {\"modulesContent\": {...}}")
    return data
