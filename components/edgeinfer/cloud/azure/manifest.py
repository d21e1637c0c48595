"""Deployment manifests for the edgeinfer module, built from a template and the one config schema.

The template (``deployment.template.json`` here, or the user's own with more modules in it) gives the
structure: ``$edgeAgent`` runtime and system modules, the module entry, ``$edgeHub`` routes and
store-and-forward. ``${NAME}`` placeholders in keys and strings are filled in; then the module's image,
createOptions (state volume, GPU ``DeviceRequests``, cameras), env and restart policy, the route
priorities/TTLs, registry credentials (the password only as a ``$VARIABLE`` reference, resolved at
deploy time) and the module's desired properties (= the core config + the model to deliver) are set. With
``blob``, the Azure Blob Storage on IoT Edge module joins for captures (blobmodule.py).
createOptions of every module leave as JSON strings of <= 512 characters.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ... import __version__
from ...azure.limits import module_name_problem
from ...azure.modelref import ModelRef, split_model
from ...core import config as cfgmod
from . import create_options
from .blobmodule import BlobModuleOptions, add_blob_module, captures_on
from .errors import ManifestError

DEFAULT_TEMPLATE = Path(__file__).with_name("deployment.template.json")
Platform = Literal["amd64", "arm64v8", "amd64.cuda", "arm64v8.l4t"]
GPU_PLATFORMS = frozenset({"amd64.cuda", "arm64v8.l4t"})
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegistryCredential(_Strict):
    """A private registry the device pulls from. The password never appears: only ``$<password_env>``."""

    name: str = Field(pattern=r"^[^.$# ]+$", description="Key under registryCredentials, e.g. the ACR name")
    address: str = Field(pattern=r"^[^\s]+$", description="e.g. myacr.azurecr.io")
    username: str = Field(min_length=1, description="User name, or a $VARIABLE reference")
    password_env: str = Field(pattern=ENV_NAME, description="Environment variable holding the password at deploy "
                              "time (`edgeinfer azure deploy` resolves it; never written to the manifest)")


class Routing(_Strict):
    alerts_priority: int = Field(default=0, ge=0, le=9, description="edgeHub route priority (0 = highest)")
    telemetry_priority: int = Field(default=5, ge=0, le=9)
    alerts_ttl_s: int = Field(default=86400, ge=0, description="How long edgeHub keeps alerts while offline")
    telemetry_ttl_s: int = Field(default=7200, ge=0)
    store_and_forward_ttl_s: int = Field(default=7200, ge=0, description="edgeHub default message TTL")


class ManifestOptions(_Strict):
    module_name: str = "edgeinfer"
    image: str | None = Field(default=None, description="Full image reference; default "
                              "[registry/]repository:version-platform")
    registry: str | None = None
    repository: str = "edgeinfer"
    version: str = __version__
    platform: Platform = "amd64"
    gpu: bool | None = Field(default=None, description="Request GPUs (DeviceRequests); default: GPU platforms")
    devices: list[str] = Field(default_factory=list, description="Host devices for the container, e.g. /dev/video0")
    state_volume: str = Field(default="edgeinfer-state", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$|^/.+$")
    env: dict[str, str | int | float | bool] = Field(default_factory=dict)
    create_options: dict[str, Any] = Field(default_factory=dict, description="Merged over the template's")
    credentials: list[RegistryCredential] = Field(default_factory=list)
    routing: Routing = Field(default_factory=Routing)
    edge_runtime_version: str = "1.5"
    restart_policy: Literal["never", "on-failure", "on-unhealthy", "always"] = "always"
    config: dict[str, Any] = Field(default_factory=dict, description="Module desired properties: the core config")
    model: ModelRef | None = None
    template: Path | None = None
    blob: BlobModuleOptions | None = Field(default=None, description="Captures to blob: add the Azure Blob Storage "
                                           "on IoT Edge module (blobmodule.py) and turn captures on")

    @field_validator("module_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if problem := module_name_problem(v):
            raise ValueError(problem)
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, Any]) -> dict[str, Any]:
        if bad := [k for k in v if not re.match(ENV_NAME, k)]:
            raise ValueError(f"invalid environment variable name(s) {bad}")
        return v

    def image_ref(self) -> str:
        if self.image:
            return self.image
        prefix = f"{self.registry.rstrip('/')}/" if self.registry else ""
        return f"{prefix}{self.repository}:{self.version}-{self.platform}"

    def wants_gpu(self) -> bool:
        return self.platform in GPU_PLATFORMS if self.gpu is None else self.gpu


def substitute(node: Any, values: dict[str, str]) -> Any:
    """Fill ``${NAME}`` in every key and string; unknown names stay (and fail validation)."""
    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    if isinstance(node, dict):
        return {fill(k): substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values) for v in node]
    return fill(node) if isinstance(node, str) else node


def deep_merge_lists(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge createOptions: objects merge, lists concatenate (without duplicates), scalars replace."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge_lists(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        else:
            out[key] = copy.deepcopy(value)
    return out


def desired_properties(config: dict[str, Any], model: ModelRef | None) -> dict[str, Any]:
    """The module twin's desired properties: the whole core config (defaults filled in, nulls left out,
    since a twin null means "delete") plus the model delivery fields. Raises ConfigError when invalid."""
    delivery, rest = split_model(config)
    if model is not None and delivery is not None and model != delivery:
        raise ManifestError("the config names a model delivery and another model was given",
                            "give the model once (config or --model-* / --aml-*)")
    model = model or delivery
    rest.pop("device_id", None)  # the module takes the IoT Edge device id
    validated = cfgmod.validate(cfgmod.deep_merge(cfgmod.defaults_json(), rest), "module desired properties")
    if validated.telemetry.transport not in ("none", "iotedge"):
        raise ManifestError(f"telemetry.transport {validated.telemetry.transport!r}: the module sends telemetry "
                            "through its outputs", "leave telemetry.transport out; the outputs 'telemetry' and "
                            "'alerts' are routed in $edgeHub's routes")
    desired = validated.model_dump(mode="json", exclude_none=True, exclude={"device_id"})
    desired["telemetry"]["transport"] = "iotedge"  # what the module does: the twin says so
    if model is not None:
        desired["model"].update(model.model_dump(mode="json", exclude_none=True))
    return desired


def _module_create_options(opts: ManifestOptions, settings: dict[str, Any], where: str) -> dict[str, Any]:
    raw = settings.get("createOptions", {})
    if isinstance(raw, str):
        base, problems = create_options.decode(settings, where)
        if problems:
            raise ManifestError(problems[0], "fix the template's createOptions")
        raw = base or {}
    extra: dict[str, Any] = {"HostConfig": {}}
    if opts.wants_gpu():
        extra["HostConfig"]["DeviceRequests"] = [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]
    if opts.devices:
        extra["HostConfig"]["Devices"] = [{"PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rwm"}
                                          for d in opts.devices]
        extra["HostConfig"]["GroupAdd"] = ["video"]
    return deep_merge_lists(deep_merge_lists(raw, extra), opts.create_options)


def _set_create_options(settings: dict[str, Any], options: dict[str, Any] | str, where: str) -> None:
    for key in [k for k in settings if create_options.KEY.match(k)]:
        del settings[key]
    settings.update(create_options.encode(options, where))


def load_template(path: Path | None) -> dict[str, Any]:
    p = path or DEFAULT_TEMPLATE
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read deployment template {p}: {exc}", "pass a JSON deployment template") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("modulesContent"), dict):
        raise ManifestError(f"template {p} has no modulesContent object", "start from edgeinfer's own template")
    return doc


def build_manifest(opts: ManifestOptions) -> dict[str, Any]:
    """The deployment manifest (``{"modulesContent": ...}``), ready for validation and deployment."""
    name = opts.module_name
    doc = substitute(load_template(opts.template), {
        "MODULE_NAME": name, "MODULE_IMAGE": opts.image_ref(), "STATE_VOLUME": opts.state_volume,
        "EDGE_RUNTIME_VERSION": opts.edge_runtime_version})
    content = doc["modulesContent"]
    try:
        agent = content["$edgeAgent"]["properties.desired"]
        module = agent["modules"][name]
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"the template has no $edgeAgent module {name!r}",
                            "add it under modulesContent.$edgeAgent.properties.desired.modules") from exc
    module["restartPolicy"] = opts.restart_policy
    module.setdefault("env", {}).update({k: {"value": v} for k, v in opts.env.items()})
    module["settings"]["image"] = opts.image_ref()
    _set_create_options(module["settings"], _module_create_options(opts, module["settings"], name), name)
    if opts.blob is not None:
        add_blob_module(content, opts.blob, name)
    for where, entry in [*agent.get("systemModules", {}).items(), *agent.get("modules", {}).items()]:
        if where != name and isinstance(entry.get("settings"), dict):
            settings = entry["settings"]
            _set_create_options(settings, settings.get("createOptions", {}), where)
    creds = agent["runtime"].setdefault("settings", {}).setdefault("registryCredentials", {})
    for c in opts.credentials:
        creds[c.name] = {"address": c.address, "username": c.username, "password": f"${c.password_env}"}
    hub = content.setdefault("$edgeHub", {}).setdefault("properties.desired", {})
    routes = hub.setdefault("routes", {})
    r = opts.routing
    for suffix, output, priority, ttl in (("Alerts", "alerts", r.alerts_priority, r.alerts_ttl_s),
                                          ("Telemetry", "telemetry", r.telemetry_priority, r.telemetry_ttl_s)):
        routes[f"{name}{suffix}"] = {"route": f"FROM /messages/modules/{name}/outputs/{output} INTO $upstream",
                                     "priority": priority, "timeToLiveSecs": ttl}
    hub["storeAndForwardConfiguration"] = {"timeToLiveSecs": r.store_and_forward_ttl_s}
    twin = content.setdefault(name, {}).setdefault("properties.desired", {})
    config = cfgmod.deep_merge(twin, opts.config)
    content[name]["properties.desired"] = desired_properties(captures_on(config) if opts.blob else config, opts.model)
    return doc


def write_manifest(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path
