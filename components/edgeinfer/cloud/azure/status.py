"""Deployment status per device, from the twins IoT Hub keeps: edgeAgent's ``lastDesiredStatus`` /
``lastDesiredVersion`` against its desired ``$version``, and the edgeinfer module's reported ``config``,
``state`` and ``model`` (what actually runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .deploy import HubClients, http_error


@dataclass(frozen=True)
class DeviceStatus:
    device_id: str
    state: str  # applied | failed | pending
    model: str | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "state": self.state, "model": self.model, "reason": self.reason}


def _props(twin: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    props = getattr(twin, "properties", None)
    return (getattr(props, "desired", None) or {}), (getattr(props, "reported", None) or {})


def classify(device_id: str, agent_twin: Any, module_twin: Any | None) -> DeviceStatus:
    desired, reported = _props(agent_twin)
    last = reported.get("lastDesiredStatus") or {}
    code, agent_version = last.get("code"), reported.get("lastDesiredVersion")
    _, module = _props(module_twin) if module_twin is not None else ({}, {})
    config = module.get("config") or {}
    model = module.get("model") or {}
    label = f"{model.get('name')} {model.get('version')}" if model else None
    if code is not None and code != 200:
        return DeviceStatus(device_id, "failed", label, f"edgeAgent {code}: {last.get('description') or ''}".strip())
    if config.get("status") == "rejected":
        return DeviceStatus(device_id, "failed", label, f"module rejected desired v{config.get('desired_version')}: "
                            f"{config.get('error')}")
    if module.get("state") == "error":
        return DeviceStatus(device_id, "failed", label, module.get("last_error") or "module error")
    if code == 200 and agent_version == desired.get("$version") and config.get("status") == "applied":
        return DeviceStatus(device_id, "applied", label, None)
    if code != 200 or agent_version != desired.get("$version"):
        why = f"edgeAgent has not applied desired v{desired.get('$version')} yet"
    else:
        why = "the module has not reported this configuration yet"
    return DeviceStatus(device_id, "pending", label, why)


def _query(clients: HubClients, query: str) -> list[Any]:
    from azure.iot.hub.models import QuerySpecification

    items: list[Any] = []
    token = None
    try:
        while True:
            page = clients.registry.query_iot_hub(QuerySpecification(query=query), token)
            items.extend(page.items or [])
            token = page.continuation_token
            if not token:
                return items
    except Exception as exc:
        raise http_error(exc, "querying IoT Hub") from exc


def device_status(clients: HubClients, device_id: str, module_name: str = "edgeinfer") -> DeviceStatus:
    try:
        agent = clients.registry.get_module_twin(device_id, "$edgeAgent")
    except Exception as exc:
        raise http_error(exc, f"reading the $edgeAgent twin of {device_id}") from exc
    try:
        module = clients.registry.get_module_twin(device_id, module_name)
    except Exception:  # the module identity appears once edgeAgent created it
        module = None
    return classify(device_id, agent, module)


def deployment_status(clients: HubClients, deployment_id: str,
                      module_name: str = "edgeinfer") -> tuple[dict[str, Any], list[DeviceStatus]]:
    """(IoT Hub's metrics for the deployment, one status per device it applies to)."""
    try:
        configuration = clients.configurations.get_configuration(deployment_id)
    except Exception as exc:
        raise http_error(exc, f"reading deployment {deployment_id}") from exc
    metrics = {**(getattr(configuration.system_metrics, "results", None) or {}),
               **(getattr(configuration.metrics, "results", None) or {})}
    agents = _query(clients, "SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent' AND "
                             f"configurations.[[{deployment_id}]].status = 'Applied'")
    modules = {t.device_id: t for t in _query(clients, f"SELECT * FROM devices.modules WHERE moduleId = "
                                                       f"'{module_name}'")}
    return metrics, [classify(t.device_id, t, modules.get(t.device_id)) for t in agents]
