"""Simulated device outcomes for AWS rollouts: a settable clock, the CDK rollback rule's effect, API call counts.

A device's deployment outcome goes through the Greengrass fake (``report``) and so into the IoT job's
process details; a device whose health gate rolls back publishes a health event with ``rollback`` (the
contract in docs/rollouts.md), which the CDK stack's rollback rule turns into one CloudWatch datapoint:
``rolled_back`` does exactly that against moto's CloudWatch."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edgeinfer.cloud.rollout.contract import Rollback, rollback_metric

NAMESPACE = "edgeinfer/test-fleet"


@dataclass
class Clock:
    t: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


def health_event(device: str, model: str, old: str, new: str, reason: str, when: dt.datetime) -> dict[str, Any]:
    """A health event as the device-side gate emits it after a rollback (the documented contract)."""
    at = when.isoformat().replace("+00:00", "Z")
    return {"type": "health", "device_id": device, "model": {"name": model, "version": old},
            "run": {"state": "rolled_back", "reason": reason},
            "rollback": {"from": new, "to": old, "reason": reason, "at": at}}


def rule_rollback(cloudwatch: Any, event: dict[str, Any]) -> None:
    """What the CDK stack's rollback rule does with a health event that carries ``rollback``."""
    rb = Rollback.read(event)
    assert rb is not None, event
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[{
        "MetricName": rollback_metric(event["model"]["name"], rb.from_version), "Value": 1.0, "Unit": "Count",
        "Timestamp": rb.at}])


class CallCounter:
    """Every AWS API call the real boto3 clients send (their own event hooks), and the Greengrass fake's."""

    def __init__(self, *clients: Any, greengrass: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.gg = greengrass
        self._gg_start = len(greengrass.calls)
        for c in clients:
            c.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name}.{model.name}"] += 1

    def reset(self) -> None:
        self.counts.clear()
        self._gg_start = len(self.gg.calls)

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + len(self.gg.calls) - self._gg_start

    def detail(self) -> dict[str, int]:
        gg = Counter(f"greengrassv2.{op}" for op, _ in self.gg.calls[self._gg_start:])
        return dict(self.counts + gg)
