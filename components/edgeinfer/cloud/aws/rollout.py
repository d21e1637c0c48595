"""Rollout rings on Greengrass: each ring a thing group, each ring's step a deployment with an IoT job.

A ring's progress costs a constant number of calls however many devices it has: the ring's thing group,
its deployment history (a page or two), the deployment, the IoT job's process details (succeeded /
failed / rejected / timed out / queued / in progress counts kept by AWS IoT) and one CloudWatch read of the
devices' rollbacks. Per-device detail is separate, on demand and paginated (``device_page``).

An abort cancels the ring's deployment (its IoT job stops notifying devices), deploys the ring's previous
components again (``revert_on_abort``) and tags the deployment ``edgeinfer:aborted`` with the reason: the
tag is the rollout's memory, so ``status`` from anywhere shows the ring aborted and why.

Devices count a rollback under the model name THEY report (the package manifest's ``name``), which need not
be the plan's ``model`` (the model package group): each ring's deployment records that name in the tag
``edgeinfer:model-name`` (read from the model component's recipe when the ring is deployed), and the
rollback metric is read under it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...greengrass import MODEL_COMPONENT_PREFIX
from ..rollout.engine import utcnow
from ..rollout.plan import Ring, RolloutPlan
from ..rollout.progress import RingProgress
from . import deploy as dep
from .clients import AwsClients
from .components import component_arn, get_recipe
from .errors import DeploymentError
from .rollbacks import RollbackCounter, minute_after, minute_of
from .rollout_job import iot_job_configuration
from .targets import Target

log = logging.getLogger(__name__)
ABORTED_TAG, PREVIOUS_TAG, ROLLOUT_TAG, RING_TAG = ("edgeinfer:aborted", "edgeinfer:previous", "edgeinfer:rollout",
                                                    "edgeinfer:ring")
MODEL_NAME_TAG = "edgeinfer:model-name"  # the model name devices report (their rollback metric's name)
REVERT_SUFFIX = "-revert"


class _Counted:
    """The Greengrass, IoT and CloudWatch calls one reading makes."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        self.n += 1
        return fn(**kwargs)


@dataclass
class GreengrassRollout:
    clients: AwsClients
    rollbacks: RollbackCounter
    adjust: Callable[[dep.Plan], None] = field(default=lambda _: None)  # e.g. the CDK Lambda's baseline
    now: Callable[[], dt.datetime] = utcnow

    def _find(self, plan: RolloutPlan, ring: Ring, call: _Counted) -> tuple[Target, dict[str, Any] | None]:
        """The ring's target and the newest deployment of this rollout to it (a summary), if any."""
        arn = call(self.clients.iot.describe_thing_group, thingGroupName=ring.target)["thingGroupArn"]
        target = Target(ring.target, "thinggroup", arn)
        name, found, token = plan.deployment_name(ring), None, None
        while True:
            page = call(self.clients.greengrass.list_deployments, targetArn=arn, historyFilter="ALL",
                        **({"nextToken": token} if token else {}))
            for d in page.get("deployments", []):
                if d.get("deploymentName") == name and (found is None or
                                                        d["creationTimestamp"] > found["creationTimestamp"]):
                    found = d
            token = page.get("nextToken")
            if not token:
                return target, found

    def ring_progress(self, plan: RolloutPlan, ring: Ring) -> RingProgress:
        call = _Counted()
        try:
            _, summary = self._find(plan, ring, call)
        except self.clients.iot.exceptions.ResourceNotFoundException as exc:
            raise DeploymentError(f"ring {ring.name}: no thing group {ring.target!r} in {self.clients.region}",
                                  "create it (aws iot create-thing-group) and add the ring's core devices, or fix "
                                  "the plan's target") from exc
        if summary is None:
            return RingProgress(ring.name, calls=call.n)
        d = call(self.clients.greengrass.get_deployment, deploymentId=summary["deploymentId"])
        job = call(self.clients.iot.describe_job, jobId=d["iotJobId"])["job"]
        pd = job.get("jobProcessDetails") or {}
        n = {k: int(pd.get(f"numberOf{k}Things") or 0) for k in
             ("Succeeded", "Failed", "Rejected", "TimedOut", "Queued", "InProgress", "Canceled")}
        started = d["creationTimestamp"]
        i = plan.rings.index(ring)
        since = minute_after(started) if i else minute_of(started)  # windows meet on minutes: see rollbacks.py
        until = minute_after(self.now())
        if i + 1 < len(plan.rings):  # rollbacks after the next ring started belong to it
            _, nxt = self._find(plan, plan.rings[i + 1], call)
            until = minute_after(nxt["creationTimestamp"]) if nxt else until
        rolled = 0
        if since < until:  # (a ring younger than a minute has no whole minute to count yet)
            call.n += 1
            reported_name = (d.get("tags") or {}).get(MODEL_NAME_TAG) or plan.model
            rolled = min(n["Succeeded"], self.rollbacks.count(reported_name, plan.model_version, since, until))
        failed = n["Failed"] + n["Rejected"] + n["TimedOut"]
        reasons = {k.lower(): v for k, v in (("Failed", n["Failed"]), ("Rejected", n["Rejected"]),
                                              ("TimedOut", n["TimedOut"])) if v}
        if rolled:
            reasons["rolled back by the device health gate"] = rolled
        stopped = None
        if job.get("status") == "CANCELED" or d.get("deploymentStatus") in ("CANCELED", "FAILED"):
            stopped = (f"IoT job {d['iotJobId']} {job.get('status', '').lower()}"
                       f"{': ' + str(job['reasonCode']) if job.get('reasonCode') else ''}"
                       f"{' (' + str(job['comment']) + ')' if job.get('comment') else ''}")
        return RingProgress(
            ring.name, deployed=True, deployment=d["deploymentId"], started_at=started,
            targeted=sum(n.values()), succeeded=n["Succeeded"] - rolled, failed=failed, rolled_back=rolled,
            in_progress=n["Queued"] + n["InProgress"], stopped_by_cloud=stopped,
            aborted=(d.get("tags") or {}).get(ABORTED_TAG), reasons=reasons, calls=call.n)

    def deploy_ring(self, plan: RolloutPlan, ring: Ring) -> str:
        p = dep.plan(self.clients, ring.target, plan.model, plan.model_version, plan.inference_version,
                     kind="thinggroup")
        self.adjust(p)
        tags = {ROLLOUT_TAG: plan.name, RING_TAG: ring.name, **({PREVIOUS_TAG: p.previous} if p.previous else {})}
        if reported := self._reported_name(p):
            tags[MODEL_NAME_TAG] = reported
        dep.create(self.clients, p, name=plan.deployment_name(ring), iot_job=iot_job_configuration(plan.aws),
                   tags=tags)
        return str(p.deployment_id)

    def _reported_name(self, p: dep.Plan) -> str | None:
        """The name devices report for the plan's model component version (its recipe's ``package.name``)."""
        model = next((n for n in p.components if n.startswith(MODEL_COMPONENT_PREFIX)), None)
        if model is None:
            return None
        arn = component_arn(self.clients.region, self.clients.account(), model, p.components[model]["componentVersion"])
        recipe = get_recipe(self.clients, arn) or {}
        package = ((recipe.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}).get("package") or {}
        name = package.get("name")
        return str(name)[:256] if name else None

    def abort_ring(self, plan: RolloutPlan, ring: Ring, progress: RingProgress, why: str) -> None:
        gg = self.clients.greengrass
        d = gg.get_deployment(deploymentId=str(progress.deployment))
        if d.get("deploymentStatus") == "ACTIVE":
            gg.cancel_deployment(deploymentId=d["deploymentId"])
        previous = (d.get("tags") or {}).get(PREVIOUS_TAG)
        note = why
        if plan.aws.revert_on_abort and previous:
            old = gg.get_deployment(deploymentId=previous)
            made = gg.create_deployment(targetArn=d["targetArn"], components=old.get("components") or {},
                                        deploymentName=plan.deployment_name(ring) + REVERT_SUFFIX,
                                        deploymentPolicies=old.get("deploymentPolicies") or {},
                                        tags={ROLLOUT_TAG: plan.name, RING_TAG: ring.name})
            note = f"{why}; reverted by deployment {made['deploymentId']}"
        elif plan.aws.revert_on_abort:
            note = f"{why}; nothing to revert to (the ring had no deployment before)"
        arn = f"arn:aws:greengrass:{self.clients.region}:{self.clients.account()}:deployments:{d['deploymentId']}"
        gg.tag_resource(resourceArn=arn, tags={ABORTED_TAG: note[:256]})


@dataclass
class DeviceRow:
    device: str
    status: str
    reason: str | None = None


def device_page(clients: AwsClients, plan: RolloutPlan, ring: Ring, token: str | None = None, page_size: int = 25,
                status: str | None = None) -> tuple[list[DeviceRow], str | None]:
    """One page of the ring's devices from its IoT job's executions (and, for failures, why): on demand only."""
    call = _Counted()
    _, summary = GreengrassRollout(clients, _NoRollbacks())._find(plan, ring, call)
    if summary is None:
        return [], None
    d = clients.greengrass.get_deployment(deploymentId=summary["deploymentId"])
    page = clients.iot.list_job_executions_for_job(jobId=d["iotJobId"], maxResults=page_size,
                                                   **({"nextToken": token} if token else {}),
                                                   **({"status": status} if status else {}))
    rows = []
    for e in page.get("executionSummaries", []):
        thing = e["thingArn"].rsplit("/", 1)[-1]
        state = e.get("jobExecutionSummary", {}).get("status", "?")
        reason = None
        if state in ("FAILED", "REJECTED", "TIMED_OUT"):
            effective = clients.greengrass.list_effective_deployments(coreDeviceThingName=thing)
            mine = [x for x in effective.get("effectiveDeployments", []) if x.get("deploymentId") == d["deploymentId"]]
            reason = mine[0].get("reason") if mine else None
        rows.append(DeviceRow(thing, state, reason))
    return rows, page.get("nextToken")


class _NoRollbacks:
    def count(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> int:
        return 0
