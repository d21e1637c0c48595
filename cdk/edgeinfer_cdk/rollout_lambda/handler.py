"""Lambda entry point: the SAME ``publish`` and rollout engine as ``edgeinfer aws publish`` and
``edgeinfer aws rollout start|advance``.

* A model package approval (EventBridge): publish the version (model component, and the inference component
  when that version is new), then start its rollout: the fleet's plan (context ``rollout``) as ``<group>-vN``,
  which deploys the first ring only (canary), with the fleet's baseline components kept in every ring's
  deployment.
* The schedule (EventBridge, every ``advance_every_minutes``): ``advance`` the rollout in flight: abort a
  failing ring (cancel, revert, tag why) or deploy the next ring after a healthy soak.

Failures raise: Lambda retries, then the event goes to the failure queue with the typed error's message.
An aborted rollout is an outcome, not a failure: it is logged and returned.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeinfer.cloud.aws.clients import AwsClients
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.cloud.aws.rollbacks import CloudWatchRollbacks
from edgeinfer.cloud.aws.rollout import GreengrassRollout
from edgeinfer.cloud.rollout import engine

from .baseline import apply_baseline
from .event import Approval, NotForUs, is_schedule
from .plan import RolloutSettings, in_flight

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    bucket: str
    model_group: str
    metrics_namespace: str
    rollout: RolloutSettings
    baseline: dict[str, dict[str, Any]]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            return cls(bucket=env["EDGEINFER_BUCKET"], model_group=env["EDGEINFER_MODEL_GROUP"],
                       metrics_namespace=env["EDGEINFER_METRICS_NAMESPACE"],
                       rollout=RolloutSettings.model_validate_json(env["EDGEINFER_ROLLOUT"]),
                       baseline=json.loads(env.get("EDGEINFER_BASELINE", "{}")))
        except KeyError as exc:
            raise RuntimeError(f"environment variable {exc.args[0]} is not set (the CDK stack sets it)") from exc


def driver(settings: Settings, clients: AwsClients, now: Callable[[], dt.datetime]) -> GreengrassRollout:
    """The CLI's Greengrass rollout driver, with the fleet's baseline kept in every ring's deployment."""
    return GreengrassRollout(clients, CloudWatchRollbacks(clients.cloudwatch, settings.metrics_namespace),
                             adjust=lambda p: log.info("baseline: %s", apply_baseline(p.components, settings.baseline)
                                                       or "kept"), now=now)


def summary(st: engine.RolloutStatus) -> dict[str, Any]:
    return {"rollout": st.plan.name, "modelVersion": st.plan.model_version, "outcome": st.outcome,
            "actions": st.actions, "rings": [{**v.progress.as_dict(), "state": v.state, "why": v.why}
                                             for v in st.rings]}


def start(approval: Approval, settings: Settings, clients: AwsClients,
          now: Callable[[], dt.datetime] = engine.utcnow) -> dict[str, Any]:
    log.info("%s v%d approved: publishing", approval.group, approval.version)
    published = publish(clients, approval.group, settings.bucket, version=approval.version)
    log.info("published %s %s (created: %s; reused: %s)", published.model_component, published.model_version,
             published.ledger.created or "nothing", published.ledger.reused or "nothing")
    plan = settings.rollout.plan(approval.group, approval.version, published.model_version,
                                 published.inference_version)
    st = engine.advance(driver(settings, clients, now), plan, now, start=True)
    log.info("rollout %s: %s", plan.name, "; ".join(st.actions) or f"already started ({st.outcome})")
    return {**summary(st), "modelComponent": published.model_component,
            "inferenceVersion": published.inference_version, "created": published.ledger.created}


def advance(settings: Settings, clients: AwsClients,
            now: Callable[[], dt.datetime] = engine.utcnow) -> dict[str, Any]:
    plan = in_flight(clients, settings.rollout, settings.model_group)
    if plan is None:
        log.info("no rollout of %s to advance", settings.model_group)
        return {"rollout": None}
    st = engine.advance(driver(settings, clients, now), plan, now)
    level = logging.WARNING if st.outcome == "aborted" else logging.INFO
    log.log(level, "rollout %s: %s (%s)", plan.name, "; ".join(st.actions) or "nothing to do", st.outcome)
    return summary(st)


def rollout(event: dict[str, Any], settings: Settings, clients: AwsClients,
            now: Callable[[], dt.datetime] = engine.utcnow) -> dict[str, Any]:
    if is_schedule(event):
        return advance(settings, clients, now)
    try:
        approval = Approval.parse(event, settings.model_group)
    except NotForUs as exc:
        log.info("ignored: %s", exc)
        return {"skipped": str(exc)}
    return start(approval, settings, clients, now)


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    return rollout(event, Settings.from_env(os.environ), AwsClients.from_session(boto3.Session()))
