"""``edgeinfer aws deploy``: put a model + inference component version on a thing group or a thing.

A new deployment REPLACES the target's component set, so the plan starts from the target's current
deployment and keeps everything else on it (nucleus, DiskSpooler, ...). Configuration on a device is
MERGED across deployments, so new defaults would never arrive: every default that differs between
the deployed and the new inference version is listed in ``configurationUpdate.reset`` (reset runs
before merge, so the target's own merge still wins). Components are notified before they update
(NOTIFY_COMPONENTS: the inference component defers during a model warm-up) and a failure rolls back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ...core import config as cfgmod
from ...greengrass import INFERENCE_COMPONENT, MODEL_COMPONENT_PREFIX, model_component_name
from ...greengrass.recipes.semver import Version
from .clients import AwsClients, paginate
from .components import component_arn, get_recipe
from .errors import DeploymentError
from .targets import Kind, Target, resolve

log = logging.getLogger(__name__)
NUCLEUS_KEYS = ("accessControl",)


@dataclass
class Plan:
    target: Target
    components: dict[str, dict[str, Any]]
    resets: dict[str, list[str]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    previous: str | None = None  # the deployment this one replaces
    deployment_id: str | None = None


def pointers(old: Any, new: Any, prefix: str = "") -> list[str]:
    """JSON pointers where ``new`` differs from ``old`` (leaves; a changed ``accessControl`` as a whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key in NUCLEUS_KEYS and not prefix:
                out += [path] if old.get(key) != new.get(key) else []
            elif key not in old or key not in new:
                out.append(path)
            else:
                out += pointers(old[key], new[key], path)
        return out
    return [] if old == new else [prefix or "/"]


def latest_version(clients: AwsClients, account: str, name: str) -> str:
    base = f"arn:aws:greengrass:{clients.region}:{account}:components:{name}"
    versions = paginate(clients.greengrass.list_component_versions, "componentVersions", arn=base)
    if not versions:
        raise DeploymentError(f"component {name} has no versions in {clients.region}",
                              "publish it first: edgeinfer aws publish --group GROUP")
    return str(max((v["componentVersion"] for v in versions), key=Version.parse))


def _defaults(recipe: dict[str, Any] | None) -> dict[str, Any]:
    return ((recipe or {}).get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}


def current_deployment(clients: AwsClients, target: Target) -> dict[str, Any] | None:
    listed = paginate(clients.greengrass.list_deployments, "deployments", targetArn=target.arn,
                      historyFilter="LATEST_ONLY")
    live = [d for d in listed if d.get("deploymentStatus") in ("ACTIVE", "COMPLETED")]
    if not live:
        return None
    newest = max(live, key=lambda d: d["creationTimestamp"])
    return clients.greengrass.get_deployment(deploymentId=newest["deploymentId"])


def plan(clients: AwsClients, target_name: str, model: str, model_version: str | None = None,
         inference_version: str | None = None, config_merge: dict[str, Any] | None = None, kind: Kind = "auto",
         inference_name: str = INFERENCE_COMPONENT) -> Plan:
    target = resolve(clients, target_name, kind)
    account = clients.account()
    model_name = model_component_name(model)
    model_version = model_version or latest_version(clients, account, model_name)
    inference_version = inference_version or latest_version(clients, account, inference_name)
    new_recipe = get_recipe(clients, component_arn(clients.region, account, inference_name, inference_version))
    for name, version, recipe in ((inference_name, inference_version, new_recipe), (model_name, model_version, None)):
        if recipe is None and get_recipe(clients, component_arn(clients.region, account, name, version)) is None:
            raise DeploymentError(f"component {name} {version} does not exist in {clients.region}",
                                  "publish it first: edgeinfer aws publish")
    deps = (new_recipe or {}).get("ComponentDependencies") or {}
    if model_name not in deps:
        raise DeploymentError(f"{inference_name} {inference_version} depends on "
                              f"{[d for d in deps if d.startswith(MODEL_COMPONENT_PREFIX)]}, not {model_name}",
                              "deploy an inference version published for this model")
    current = current_deployment(clients, target)
    components: dict[str, dict[str, Any]] = dict((current or {}).get("components") or {})
    p = Plan(target, components, previous=(current or {}).get("deploymentId"))
    for name in [n for n in components if n.startswith(MODEL_COMPONENT_PREFIX) and n != model_name]:
        components.pop(name)
        p.removed.append(name)
    components[model_name] = {"componentVersion": model_version}
    old = components.get(inference_name, {})
    update = dict(old.get("configurationUpdate") or {})
    update.pop("reset", None)  # resets belong to the deployment that made them
    merge = json.loads(update.get("merge") or "{}")
    if config_merge:
        merge = cfgmod.deep_merge(merge, config_merge)
        update["merge"] = json.dumps(merge, separators=(",", ":"))
    if old.get("componentVersion") and old["componentVersion"] != inference_version:
        old_recipe = get_recipe(clients, component_arn(clients.region, account, inference_name,
                                                       old["componentVersion"]))
        if resets := pointers(_defaults(old_recipe), _defaults(new_recipe)):
            update["reset"] = resets
            p.resets[inference_name] = resets
    effective = cfgmod.deep_merge({k: v for k, v in _defaults(new_recipe).items() if k not in NUCLEUS_KEYS},
                                  {k: v for k, v in merge.items() if k not in NUCLEUS_KEYS})
    cfgmod.validate(effective, f"configuration for {target.name}")  # devices would reject it: say so now
    components[inference_name] = {**{k: v for k, v in old.items() if k != "configurationUpdate"},
                                  "componentVersion": inference_version,
                                  **({"configurationUpdate": update} if update else {})}
    return p


def create(clients: AwsClients, p: Plan, name: str | None = None, update_timeout_s: int = 120,
           validation_timeout_s: int = 60, rollback: bool = True, iot_job: dict[str, Any] | None = None,
           tags: dict[str, str] | None = None) -> Plan:
    """Create the deployment; ``iot_job`` is its ``iotJobConfiguration`` (rollout rate, abort, timeout)."""
    extra: dict[str, Any] = {k: v for k, v in (("iotJobConfiguration", iot_job), ("tags", tags)) if v}
    made = clients.greengrass.create_deployment(
        targetArn=p.target.arn, deploymentName=name or f"edgeinfer-{p.target.name}", components=p.components,
        deploymentPolicies={
            "failureHandlingPolicy": "ROLLBACK" if rollback else "DO_NOTHING",
            "componentUpdatePolicy": {"timeoutInSeconds": update_timeout_s, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": validation_timeout_s}}, **extra)
    p.deployment_id = made["deploymentId"]
    log.info("deployment %s created for %s %s", p.deployment_id, p.target.kind, p.target.name)
    return p
