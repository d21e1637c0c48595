"""Lambda entry point: model package approved -> the SAME ``publish`` and ``deploy`` as the CLI.

``edgeinfer aws publish`` (registry version -> model component, and the inference component when
that version is new) then ``edgeinfer aws deploy`` (plan from the thing group's current deployment,
then create), with the fleet's baseline components kept in the plan. Failures raise: Lambda retries
once, then the event goes to the failure queue with the typed error's message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeinfer.cloud.aws.clients import AwsClients
from edgeinfer.cloud.aws.deploy import create, plan
from edgeinfer.cloud.aws.publish import publish

from .baseline import apply_baseline
from .event import Approval, NotForUs

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    bucket: str
    model_group: str
    thing_group: str
    baseline: dict[str, dict[str, Any]]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        try:
            return cls(bucket=env["EDGEINFER_BUCKET"], model_group=env["EDGEINFER_MODEL_GROUP"],
                       thing_group=env["EDGEINFER_THING_GROUP"], baseline=json.loads(env.get("EDGEINFER_BASELINE",
                                                                                             "{}")))
        except KeyError as exc:
            raise RuntimeError(f"environment variable {exc.args[0]} is not set (the CDK stack sets it)") from exc


def rollout(event: dict[str, Any], settings: Settings, clients: AwsClients) -> dict[str, Any]:
    try:
        approval = Approval.parse(event, settings.model_group)
    except NotForUs as exc:
        log.info("ignored: %s", exc)
        return {"skipped": str(exc)}
    log.info("%s v%d approved: publishing", approval.group, approval.version)
    published = publish(clients, approval.group, settings.bucket, version=approval.version)
    log.info("published %s %s (created: %s; reused: %s)", published.model_component, published.model_version,
             published.ledger.created or "nothing", published.ledger.reused or "nothing")
    p = plan(clients, settings.thing_group, approval.group, model_version=published.model_version,
             inference_version=published.inference_version, kind="thinggroup")
    added = apply_baseline(p.components, settings.baseline)
    create(clients, p)
    log.info("deployment %s to %s: %s (baseline: %s)", p.deployment_id, p.target.name,
             ", ".join(f"{n} {c['componentVersion']}" for n, c in sorted(p.components.items())), added or "kept")
    return {"deploymentId": p.deployment_id, "target": p.target.arn, "modelComponent": published.model_component,
            "modelVersion": published.model_version, "inferenceVersion": published.inference_version,
            "components": sorted(p.components), "baselineChanged": added, "removed": p.removed,
            "created": published.ledger.created}


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    return rollout(event, Settings.from_env(os.environ), AwsClients.from_session(boto3.Session()))
