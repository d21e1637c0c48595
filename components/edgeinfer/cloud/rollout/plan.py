"""A rollout plan: the rings a model version goes through, how long each soaks and what counts as healthy.

One schema for both clouds and for the CDK approval Lambda. A ring is a thing group on AWS and a
``tags.ring`` value on Azure; rings are deployed in order, the next one only after the previous one has
soaked and passed its health criteria. The ``aws`` section is the IoT job configuration each ring's
Greengrass deployment carries (the service enforces it per device); ``azure`` the layered deployment's
priority and base condition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...core.config import load_file, one_line
from ...core.errors import ConfigError

NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ring(_Strict):
    name: str = Field(pattern=NAME, description="Ring name, e.g. canary; part of deployment names and ids")
    target: str = Field(min_length=1, description="AWS: thing group name. Azure: the devices' tags.ring value")
    soak_s: float = Field(default=3600, ge=0, description="Seconds the ring runs the new model after its "
                          "deployment, before the next ring may start")


class Health(_Strict):
    """When a ring fails. Percentages are of the ring's devices that have reported (failed) or been targeted
    (rolled back); nothing is judged before ``min_reported`` devices have reported."""

    max_failed_pct: float = Field(default=10, ge=0, le=100, description="Deployment failed/rejected/timed out")
    max_rolled_back_pct: float = Field(default=5, ge=0, le=100, description="Device health gate rolled back")
    min_reported: int = Field(default=1, ge=1, description="Devices that must report before any verdict")
    min_reported_pct: float = Field(default=90, ge=0, le=100, description="Share of targeted devices that must "
                                    "have reported before the ring can pass (offline devices do not block for ever)")


class AbortCriterion(_Strict):
    failure_type: Literal["FAILED", "REJECTED", "TIMED_OUT", "ALL"]
    threshold_pct: float = Field(gt=0, le=100)
    min_executed: int = Field(default=1, ge=1)


class AwsJob(_Strict):
    """``iotJobConfiguration`` of each ring's Greengrass deployment."""

    base_rate_per_minute: int = Field(default=10, ge=1, le=1000)
    increment_factor: float = Field(default=2.0, ge=1.1, le=5.0)
    increase_after_succeeded: int = Field(default=10, ge=1, description="Raise the rate each time this many more "
                                          "devices succeeded")
    maximum_per_minute: int = Field(default=500, ge=1, le=1000)
    abort: list[AbortCriterion] = Field(default_factory=lambda: [
        AbortCriterion(failure_type="FAILED", threshold_pct=10, min_executed=5),
        AbortCriterion(failure_type="REJECTED", threshold_pct=10, min_executed=5),
        AbortCriterion(failure_type="TIMED_OUT", threshold_pct=20, min_executed=5)])
    in_progress_timeout_minutes: int = Field(default=60, ge=1, le=10080)
    revert_on_abort: bool = Field(default=True, description="After an abort, deploy the ring's previous components "
                                  "again (devices that took the new version go back)")


class AzureLayer(_Strict):
    priority: int = Field(default=100, ge=0, description="Above the base deployment's and older layers'")
    base_condition: str | None = Field(default=None, description="ANDed with tags.ring='<ring>', e.g. "
                                       "tags.site='lab'")
    module_name: str = "edgeinfer"


class RolloutPlan(_Strict):
    name: str = Field(pattern=NAME, description="Rollout id: names every ring's deployment")
    model: str = Field(min_length=1, description="Model name (AWS: the model package group)")
    model_version: str = Field(min_length=1, description="Model version the rollout delivers")
    inference_version: str | None = Field(default=None, description="AWS: inference component version "
                                          "(default newest)")
    rings: list[Ring] = Field(min_length=1)
    health: Health = Health()
    aws: AwsJob = AwsJob()
    azure: AzureLayer = AzureLayer()

    @model_validator(mode="after")
    def _unique(self) -> RolloutPlan:
        for what in ("name", "target"):
            values = [getattr(r, what) for r in self.rings]
            if dupes := sorted({v for v in values if values.count(v) > 1}):
                raise ValueError(f"ring {what}s must be unique: {', '.join(dupes)} repeated")
        return self

    def deployment_name(self, ring: Ring) -> str:
        return f"edgeinfer-{self.name}-{ring.name}"

    def ring(self, name: str) -> Ring:
        for r in self.rings:
            if r.name == name:
                return r
        raise ConfigError(f"rollout {self.name} has no ring {name!r}",
                          f"use one of {', '.join(r.name for r in self.rings)}")


def parse_plan(data: dict[str, Any], where: str = "rollout plan") -> RolloutPlan:
    try:
        return RolloutPlan.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {where}: {one_line(exc)}", "fix the keys named (docs/rollouts.md lists them)") \
            from exc


def load_plan(path: str | Path) -> RolloutPlan:
    return parse_plan(load_file(path), f"rollout plan {path}")
