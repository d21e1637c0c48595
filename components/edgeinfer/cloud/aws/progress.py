"""Where a deployment stands on each core device, and what each device runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...greengrass import INFERENCE_COMPONENT, MODEL_COMPONENT_PREFIX
from .clients import AwsClients, paginate
from .targets import Target, core_devices

TERMINAL = {"SUCCEEDED", "COMPLETED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"}


@dataclass
class DeviceProgress:
    device: str
    status: str = "NOT_YET_REPORTED"
    reason: str | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def _execution(clients: AwsClients, device: str, deployment_id: str) -> dict[str, Any] | None:
    effective = paginate(clients.greengrass.list_effective_deployments, "effectiveDeployments",
                         coreDeviceThingName=device)
    return next((e for e in effective if e.get("deploymentId") == deployment_id), None)


def snapshot(clients: AwsClients, target: Target, deployment_id: str) -> list[DeviceProgress]:
    out = []
    for device in core_devices(clients, target):
        e = _execution(clients, device, deployment_id)
        if e is None:
            out.append(DeviceProgress(device))
        else:
            details = e.get("statusDetails") or {}
            reason = e.get("reason") or "; ".join(details.get("errorStack") or []) or None
            out.append(DeviceProgress(device, e.get("coreDeviceExecutionStatus", "UNKNOWN"), reason))
    return out


def watch(clients: AwsClients, target: Target, deployment_id: str, timeout_s: float,
          on_change: Callable[[list[DeviceProgress]], None] = lambda _: None, poll_s: float = 5.0,
          sleep: Callable[[float], None] = time.sleep) -> list[DeviceProgress]:
    """Poll until every device reports a terminal status or ``timeout_s`` passes; the last statuses."""
    deadline = time.monotonic() + timeout_s
    last: list[tuple[str, str]] | None = None
    while True:
        states = snapshot(clients, target, deployment_id)
        key = [(s.device, s.status) for s in states]
        if key != last:
            on_change(states)
            last = key
        if not states or all(s.done for s in states) or time.monotonic() >= deadline:
            return states  # (no devices: nothing will report; they get the deployment when they join)
        sleep(poll_s)


@dataclass
class DeviceStatus:
    device: str
    health: str
    last_seen: Any
    platform: str
    components: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (version, lifecycle state)
    deployment: str | None = None

    @property
    def model(self) -> str | None:
        return next((f"{n.removeprefix(MODEL_COMPONENT_PREFIX)} {v}" for n, (v, _) in self.components.items()
                     if n.startswith(MODEL_COMPONENT_PREFIX)), None)

    @property
    def inference(self) -> str | None:
        v = self.components.get(INFERENCE_COMPONENT)
        return f"{v[0]} ({v[1]})" if v else None


def device_status(clients: AwsClients, target: Target) -> list[DeviceStatus]:
    out = []
    for device in core_devices(clients, target):
        core = clients.greengrass.get_core_device(coreDeviceThingName=device)
        installed = paginate(clients.greengrass.list_installed_components, "installedComponents",
                             coreDeviceThingName=device)
        effective = paginate(clients.greengrass.list_effective_deployments, "effectiveDeployments",
                             coreDeviceThingName=device)
        latest = max(effective, key=lambda e: e.get("modifiedTimestamp") or e.get("creationTimestamp") or 0,
                     default=None)
        out.append(DeviceStatus(
            device, core.get("status", "UNKNOWN"), core.get("lastStatusUpdateTimestamp"),
            f"{core.get('platform', '?')}/{core.get('architecture', '?')}",
            {c["componentName"]: (c.get("componentVersion", "?"), c.get("lifecycleState", "?")) for c in installed
             if c["componentName"].startswith("com.edgeinfer.")},
            None if latest is None else f"{latest.get('deploymentName')} {latest.get('coreDeviceExecutionStatus')}"))
    return out
