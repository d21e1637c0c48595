"""Deploy a manifest with IoT Hub (azure-iot-hub): at scale, layered, or to one device; and its status.

* At scale / layered: ``create_configuration`` (PUT ``/configurations/{id}``) with a target condition
  and a priority. IoT Hub never changes a deployment's content, so the id carries the module version and
  a hash of the content: the same manifest deploys once (a repeat is a no-op), a changed one gets a new id.
  Layered deployments carry only edgeinfer's module, routes and twin (as ``properties.desired.<path>``
  keys) on top of a base deployment that owns edgeAgent/edgeHub.
* One device: ``apply_configuration_on_edge_device`` (POST ``/devices/{id}/applyConfigurationContent``).
* Status: per device, applied (edgeAgent applied this content and the module runs the desired version),
  failed (edgeAgent or the module rejected it, with the reason) or pending.

Registry passwords and the blob module's secrets are ``$VARIABLE`` references in the manifest; they are
resolved from the environment here, in memory, just before sending. The hub connection string comes from an
environment variable too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ... import __version__
from ...core.plugins import install_hint
from .blobmodule import secret_slots
from .errors import DeployError
from .validate import SECRET_REF

ID_CHARS = re.compile(r"[^a-z0-9\-:+%_#*?!(),=@;$']")


class Target(BaseModel):
    """Where a manifest goes: one device, or every device matching a condition."""

    model_config = ConfigDict(extra="forbid")

    device_id: str | None = None
    target_condition: str | None = Field(default=None, description="e.g. tags.site='lab' AND tags.camera=true")
    priority: int = Field(default=10, ge=0, description="Higher wins when deployments overlap")
    layered: bool = False
    prefix: str = Field(default="edgeinfer", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    labels: dict[str, str] = Field(default_factory=dict)
    module_name: str = "edgeinfer"

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.device_id is None) == (self.target_condition is None):
            raise ValueError("give a device id or a target condition (not both)")
        if self.layered and self.device_id:
            raise ValueError("a layered deployment targets devices by condition, not one device")
        return self


class ConfigurationManager(Protocol):
    def create_configuration(self, configuration: Any) -> Any: ...

    def get_configuration(self, configuration_id: str) -> Any: ...

    def apply_configuration_on_edge_device(self, device_id: str, configuration_content: Any) -> Any: ...

    def update_configuration(self, configuration: Any, etag: str) -> Any: ...


class RegistryManager(Protocol):
    def query_iot_hub(self, query_specification: Any, continuation_token: Any = None,
                      max_item_count: Any = None) -> Any: ...

    def get_module_twin(self, device_id: str, module_id: str) -> Any: ...


@dataclass(frozen=True)
class HubClients:
    configurations: ConfigurationManager
    registry: RegistryManager


def connect(connection_string_env: str = "IOTHUB_CONNECTION_STRING") -> HubClients:
    """azure-iot-hub clients from the connection string in ``$connection_string_env``."""
    cs = os.environ.get(connection_string_env)
    if not cs:
        raise DeployError(f"${connection_string_env} is not set", "export the IoT Hub connection string (az iot hub "
                          "connection-string show --policy-name iothubowner) into it")
    try:
        from azure.iot.hub import IoTHubConfigurationManager, IoTHubRegistryManager
    except ImportError as exc:
        raise DeployError(f"azure-iot-hub is not installed ({exc.name})", install_hint("azure.iot.hub")) from exc
    try:
        return HubClients(IoTHubConfigurationManager.from_connection_string(cs),
                          IoTHubRegistryManager.from_connection_string(cs))
    except Exception as exc:
        raise DeployError(f"invalid IoT Hub connection string in ${connection_string_env}: {exc}",
                          "use HostName=...;SharedAccessKeyName=...;SharedAccessKey=...") from exc


def resolve_secrets(manifest: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy with every ``$VARIABLE`` registry credential and blob storage secret (blobmodule.secret_slots)
    replaced by its value from ``env``."""
    env = dict(os.environ) if env is None else env
    doc = copy.deepcopy(manifest)
    agent = doc["modulesContent"]["$edgeAgent"]["properties.desired"]
    creds = agent.get("runtime", {}).get("settings", {}).get("registryCredentials", {})
    for name, cred in creds.items():
        for key in ("username", "password"):
            value = cred.get(key)
            if isinstance(value, str) and SECRET_REF.match(value):
                var = value.strip("${}")
                if var not in env:
                    raise DeployError(f"registry credential {name}.{key} refers to ${var}, which is not set",
                                      f"export {var} before deploying")
                cred[key] = env[var]
    for where, holder, key in secret_slots(doc["modulesContent"]):
        value = holder[key]
        if isinstance(value, str) and SECRET_REF.match(value):
            var = value.strip("${}")
            if var not in env:
                raise DeployError(f"{where} refers to ${var}, which is not set", f"export {var} before deploying")
            holder[key] = env[var]
    return doc


def content_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def deployment_id(target: Target, manifest: dict[str, Any]) -> str:
    """``<prefix>-<base|layer>-<edgeinfer version>-<hash of content, condition, priority>``."""
    version = ID_CHARS.sub("-", __version__.lower())
    kind = "layer" if target.layered else "base"
    digest = content_hash({"content": manifest, "condition": target.target_condition, "priority": target.priority,
                           "layered": target.layered})
    return f"{target.prefix}-{kind}-{version}-{digest[:12]}"


def layered_content(manifest: dict[str, Any], module_name: str) -> dict[str, Any]:
    """Only edgeinfer's part, as layered-deployment paths."""
    content = manifest["modulesContent"]
    agent = content["$edgeAgent"]["properties.desired"]
    hub = content["$edgeHub"]["properties.desired"]
    agent_layer = {f"properties.desired.modules.{module_name}": agent["modules"][module_name]}
    for name, cred in agent.get("runtime", {}).get("settings", {}).get("registryCredentials", {}).items():
        agent_layer[f"properties.desired.runtime.settings.registryCredentials.{name}"] = cred
    routes = {f"properties.desired.routes.{k}": v for k, v in hub.get("routes", {}).items()
              if k.startswith(module_name)}
    return {"$edgeAgent": agent_layer, "$edgeHub": routes,
            module_name: {"properties.desired": content[module_name]["properties.desired"]}}


def metric_queries(module_name: str) -> dict[str, str]:
    """Custom metrics IoT Hub computes for the deployment (shown in the portal and by ``status``)."""
    agent = "FROM devices.modules WHERE moduleId = '$edgeAgent'"
    return {
        "reportedSuccessfulCount": f"SELECT deviceId {agent} AND properties.desired.$version = "
                                   "properties.reported.lastDesiredVersion AND "
                                   "properties.reported.lastDesiredStatus.code = 200",
        "reportedFailedCount": f"SELECT deviceId {agent} AND properties.desired.$version = "
                               "properties.reported.lastDesiredVersion AND "
                               "properties.reported.lastDesiredStatus.code != 200",
        "edgeinferRejectedCount": f"SELECT deviceId FROM devices.modules WHERE moduleId = '{module_name}' AND "
                                  "properties.reported.config.status = 'rejected'",
    }


def http_error(exc: Exception, what: str) -> DeployError:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    text = (getattr(response, "text", "") or str(exc)).strip().replace("\n", " ")[:300]
    fix = {401: "check the connection string's key and policy (it needs registry write + service connect)",
           404: "check the device id / deployment id", 409: "the id exists already: IoT Hub content is immutable",
           }.get(status or 0, "check the IoT Hub and the message above")
    return DeployError(f"{what} failed: HTTP {status}: {text}" if status else f"{what} failed: {exc}", fix)


def deploy(clients: HubClients, manifest: dict[str, Any], target: Target,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    """Create the deployment (or apply to one device). Returns {"kind", "id"/"device_id", "created"}."""
    from azure.iot.hub.models import Configuration, ConfigurationContent, ConfigurationMetrics

    resolved = resolve_secrets(manifest, env)
    if target.device_id is not None:
        content = ConfigurationContent(modules_content=resolved["modulesContent"])
        try:
            clients.configurations.apply_configuration_on_edge_device(target.device_id, content)
        except Exception as exc:
            raise http_error(exc, f"applying the manifest to device {target.device_id}") from exc
        return {"kind": "device", "device_id": target.device_id, "created": True}
    modules = layered_content(resolved, target.module_name) if target.layered else resolved["modulesContent"]
    config_id = deployment_id(target, manifest)  # hashed without secrets: rotating a password is no new content
    labels = {"app": "edgeinfer", "edgeinferVersion": __version__, **target.labels}
    configuration = Configuration(
        id=config_id, schema_version="1.0", labels=labels, priority=target.priority,
        target_condition=target.target_condition, content=ConfigurationContent(modules_content=modules),
        metrics=ConfigurationMetrics(queries=metric_queries(target.module_name)))
    try:
        clients.configurations.create_configuration(configuration)
    except Exception as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 409:
            return {"kind": "layered" if target.layered else "at-scale", "id": config_id, "created": False}
        raise http_error(exc, f"creating deployment {config_id}") from exc
    return {"kind": "layered" if target.layered else "at-scale", "id": config_id, "created": True}
