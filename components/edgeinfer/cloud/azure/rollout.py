"""Rollout rings on IoT Hub: each ring a layered deployment on the devices tagged ``tags.ring='<ring>'``.

Every ring gets the same layer (edgeinfer's module, routes and twin with the new model) at the plan's
priority, above the base deployment, with its own id ``edgeinfer-<rollout>-<ring>``; the next ring's layer
is created only after the previous ring soaked and stayed healthy. A ring's progress is ONE call however
many devices it has: ``get_configuration``, whose system metrics (targeted, applied) and custom metrics
(the queries below, on reported properties) IoT Hub computes itself. Per-device detail is a separate,
paginated query, on demand.

An abort withdraws the ring's layer (its target condition then matches no device, so edgeAgent falls back
to the base deployment: the previous model) and writes the reason and the counts at that moment into the
configuration's labels, which is where ``status`` reads them from afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..rollout.contract import Rollback
from ..rollout.engine import utcnow
from ..rollout.plan import Ring, RolloutPlan
from ..rollout.progress import RingProgress
from .deploy import HubClients, http_error, layered_content, resolve_secrets

ROLLOUT_LABEL, RING_LABEL, ABORTED_LABEL, COUNTS_LABEL = ("edgeinferRollout", "edgeinferRing", "edgeinferAborted",
                                                          "edgeinferCounts")
COUNTS = ("targeted", "succeeded", "failed", "rolled_back")


def ring_condition(plan: RolloutPlan, ring: Ring) -> str:
    cond = f"tags.ring='{ring.target}'"
    return f"{plan.azure.base_condition} AND {cond}" if plan.azure.base_condition else cond


def metric_queries(config_id: str, module: str, version: str) -> dict[str, str]:
    """Custom metrics IoT Hub keeps for a ring's layer: devices running the new version, devices whose health
    gate rolled it back (reported ``rollback.from``), devices where edgeAgent or the module refused it."""
    mod = f"FROM devices.modules WHERE moduleId = '{module}' AND configurations.[[{config_id}]].status = 'Applied'"
    agent = (f"FROM devices.modules WHERE moduleId = '$edgeAgent' AND configurations.[[{config_id}]].status = "
             "'Applied' AND properties.desired.$version = properties.reported.lastDesiredVersion")
    return {"runningCount": f"SELECT deviceId {mod} AND properties.reported.model.version = '{version}' AND "
                            "properties.reported.config.status = 'applied'",
            "rolledBackCount": f"SELECT deviceId {mod} AND properties.reported.rollback.from = '{version}'",
            "agentFailedCount": f"SELECT deviceId {agent} AND properties.reported.lastDesiredStatus.code != 200",
            "moduleRejectedCount": f"SELECT deviceId {mod} AND properties.reported.config.status = 'rejected'"}


def _not_found(exc: Exception) -> bool:
    return getattr(getattr(exc, "response", None), "status_code", None) == 404


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


@dataclass
class IotHubRollout:
    clients: HubClients
    manifest: dict[str, Any]  # the deployment manifest whose edgeinfer part each ring's layer carries
    env: dict[str, str] | None = None  # registry passwords ($VARIABLES), default os.environ
    now: Callable[[], dt.datetime] = utcnow

    def _get(self, config_id: str) -> Any:
        try:
            return self.clients.configurations.get_configuration(config_id)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise http_error(exc, f"reading deployment {config_id}") from exc

    def ring_progress(self, plan: RolloutPlan, ring: Ring) -> RingProgress:
        cid = plan.deployment_name(ring)
        c = self._get(cid)
        if c is None:
            return RingProgress(ring.name, calls=1)
        labels = c.labels or {}
        started = _time(c.created_time_utc)
        if why := labels.get(ABORTED_LABEL):
            t, s, f, r = ([int(x) for x in labels.get(COUNTS_LABEL, "").split(",") if x.isdigit()] + [0] * 4)[:4]
            return RingProgress(ring.name, deployed=True, deployment=cid, started_at=started, aborted=why,
                                targeted=t, succeeded=s, failed=f, rolled_back=r, calls=1)
        system = getattr(c.system_metrics, "results", None) or {}
        custom = getattr(c.metrics, "results", None) or {}
        targeted = int(system.get("targetedCount", 0))
        running, rolled = int(custom.get("runningCount", 0)), int(custom.get("rolledBackCount", 0))
        failed = int(custom.get("agentFailedCount", 0)) + int(custom.get("moduleRejectedCount", 0))
        reasons = {k: v for k, v in (("edgeAgent failed", int(custom.get("agentFailedCount", 0))),
                                     ("module rejected the configuration", int(custom.get("moduleRejectedCount", 0))),
                                     ("rolled back by the device health gate", rolled)) if v}
        return RingProgress(ring.name, deployed=True, deployment=cid, started_at=started, targeted=targeted,
                            succeeded=running, failed=failed, rolled_back=rolled,
                            in_progress=max(0, targeted - running - failed - rolled), reasons=reasons, calls=1)

    def deploy_ring(self, plan: RolloutPlan, ring: Ring) -> str:
        from azure.iot.hub.models import Configuration, ConfigurationContent, ConfigurationMetrics

        cid, module = plan.deployment_name(ring), plan.azure.module_name
        desired = self.manifest["modulesContent"].get(module, {}).get("properties.desired", {})
        version = str((desired.get("model") or {}).get("version", ""))
        if version != plan.model_version:
            from .errors import DeployError

            raise DeployError(f"the manifest delivers model version {version or '(none)'}, the plan "
                              f"{plan.model_version}", "build the manifest with --model-version "
                              f"{plan.model_version}, or fix the plan")
        content = layered_content(resolve_secrets(self.manifest, self.env), module)
        configuration = Configuration(
            id=cid, schema_version="1.0", priority=plan.azure.priority, target_condition=ring_condition(plan, ring),
            labels={"app": "edgeinfer", ROLLOUT_LABEL: plan.name, RING_LABEL: ring.name},
            content=ConfigurationContent(modules_content=content),
            metrics=ConfigurationMetrics(queries=metric_queries(cid, module, plan.model_version)))
        try:
            self.clients.configurations.create_configuration(configuration)
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) != 409:  # 409: made before: same ring
                raise http_error(exc, f"creating deployment {cid}") from exc
        return cid

    def abort_ring(self, plan: RolloutPlan, ring: Ring, progress: RingProgress, why: str) -> None:
        c = self._get(str(progress.deployment))
        if c is None:
            return
        c.labels = {**(c.labels or {}), ABORTED_LABEL: why[:120],
                    COUNTS_LABEL: ",".join(str(getattr(progress, k)) for k in COUNTS)}
        c.target_condition = f"{ring_condition(plan, ring)} AND tags.edgeinferWithdrawn='{plan.name}'"
        c.content = None  # content is immutable; an update leaves it out
        try:
            self.clients.configurations.update_configuration(c, c.etag)
        except Exception as exc:
            raise http_error(exc, f"withdrawing deployment {c.id}") from exc


@dataclass
class DeviceRow:
    device: str
    model: str | None
    rollback: Rollback | None
    config_status: str | None


def device_page(clients: HubClients, plan: RolloutPlan, ring: Ring, token: str | None = None,
                page_size: int = 100) -> tuple[list[DeviceRow], str | None]:
    """One page of the ring's module twins (what runs, any rollback and why): on demand only."""
    from azure.iot.hub.models import QuerySpecification

    cid = plan.deployment_name(ring)
    query = (f"SELECT * FROM devices.modules WHERE moduleId = '{plan.azure.module_name}' AND "
             f"configurations.[[{cid}]].status = 'Applied'")
    try:
        page = clients.registry.query_iot_hub(QuerySpecification(query=query), token, page_size)
    except Exception as exc:
        raise http_error(exc, "querying IoT Hub") from exc
    rows = []
    for t in page.items or []:
        reported = getattr(getattr(t, "properties", None), "reported", None) or {}
        model = reported.get("model") or {}
        rows.append(DeviceRow(t.device_id, f"{model.get('name')} {model.get('version')}" if model else None,
                              Rollback.read(reported), (reported.get("config") or {}).get("status")))
    return rows, page.continuation_token or None
