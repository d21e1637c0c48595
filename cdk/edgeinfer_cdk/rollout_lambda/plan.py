"""The fleet's rollout plan template (context ``rollout``), and the one rollout in flight.

An approved registry version N becomes the plan ``<group>-vN`` with the template's rings, health criteria and
IoT job settings; its rings' deployments are named ``edgeinfer-<group>-vN-<ring>`` (the engine's naming). The
scheduled advance needs no state of its own: the newest deployment of that form on the first ring's thing
group is the rollout in flight (a newer approval supersedes an older rollout), and its components say which
model and inference versions the later rings get.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeinfer.cloud.aws.clients import AwsClients, paginate
from edgeinfer.cloud.rollout.plan import AwsJob, Health, Ring, RolloutPlan
from edgeinfer.greengrass import INFERENCE_COMPONENT, model_component_name

MAX_PLAN_NAME = 40  # RolloutPlan.name: [a-z0-9][a-z0-9-]{0,39}
_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>[0-9]+)$")


class RolloutSettings(BaseModel):
    """What cdk.json's ``rollout`` context holds; every key optional (rings default to canary -> fleet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rings: list[Ring] = Field(min_length=1, description="In order; each target a thing group")
    health: Health = Health()
    aws: AwsJob = AwsJob()
    advance_every_minutes: int = Field(default=5, ge=1, le=1440, description="How often the schedule advances "
                                       "the rollout in flight")

    @model_validator(mode="after")
    def _a_valid_plan(self) -> RolloutSettings:
        self.plan("x", 1, "1.0.0", None)  # unique ring names and targets: the plan's own checks
        return self

    def plan(self, group: str, version: int, model_version: str, inference_version: str | None) -> RolloutPlan:
        return RolloutPlan(name=plan_name(group, version), model=group, model_version=model_version,
                           inference_version=inference_version, rings=self.rings, health=self.health, aws=self.aws)


def plan_name(group: str, version: int) -> str:
    """``<group>-v<N>``, the group cut so the name fits a plan name (40 characters)."""
    suffix = f"-v{version}"
    return f"{group[:MAX_PLAN_NAME - len(suffix)]}{suffix}"


def registry_version(deployment_name: str, group: str, first_ring: str) -> int | None:
    """N when ``deployment_name`` is the first ring's deployment of this group's plan for version N."""
    prefix, suffix = "edgeinfer-", f"-{first_ring}"
    if not (deployment_name.startswith(prefix) and deployment_name.endswith(suffix)):
        return None
    m = _VERSION.match(deployment_name[len(prefix):-len(suffix)])
    if m is None:
        return None
    version = int(m["version"])
    return version if plan_name(group, version) == m.group(0) else None


def in_flight(clients: AwsClients, settings: RolloutSettings, group: str) -> RolloutPlan | None:
    """The plan of the newest rollout this Lambda started, rebuilt from its first ring's deployment."""
    first = settings.rings[0]
    arn = clients.iot.describe_thing_group(thingGroupName=first.target)["thingGroupArn"]
    ours: list[tuple[dict[str, Any], int]] = []
    for d in paginate(clients.greengrass.list_deployments, "deployments", targetArn=arn, historyFilter="ALL"):
        version = registry_version(str(d.get("deploymentName", "")), group, first.name)
        if version is not None:
            ours.append((d, version))
    if not ours:
        return None
    newest, version = max(ours, key=lambda x: x[0]["creationTimestamp"])
    components = clients.greengrass.get_deployment(deploymentId=newest["deploymentId"]).get("components") or {}
    model = components.get(model_component_name(group))
    if model is None:
        return None
    inference = (components.get(INFERENCE_COMPONENT) or {}).get("componentVersion")
    return settings.plan(group, version, str(model["componentVersion"]), inference)
