"""Health events as a device sends them (the core's own event model, encoded as on the wire), and what the
stack's rollback rule makes of one: the rule's SQL and metric template applied by tests/cdk/iot_sql.py."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from edgeinfer_cdk.rollback_rule import METRIC_NAME_TEMPLATE, rollback_sql
from edgeinfer_cdk.topics import TopicLayout

from edgeinfer.core.telemetry.events import BackendState, HealthEvent, ModelInfo, Rollback, RunState

from .iot_sql import parse_rule, substitute

LAYOUT = TopicLayout("edgeinfer/{device}/{type}")
SHA = "0" * 64


def health_payload(device: str, model: str, running: str, rolled_back_from: str | None = None,
                   cause: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """The JSON a device publishes: ``running`` is the version it runs now (after a rollback, the old one)."""
    rollback = None
    if rolled_back_from is not None:
        when = (at or dt.datetime.now(dt.timezone.utc)).isoformat().replace("+00:00", "Z")
        rollback = Rollback(**{"from": rolled_back_from, "to": running, "reason": "latency p95 3.1x previous",
                               "at": when})
    event = HealthEvent(device=device, model_version=running, model=ModelInfo(name=model, version=running, sha256=SHA),
                        backend=BackendState(backend="onnxruntime", device="cpu", precision="fp32"),
                        run=RunState(state="running", rollback=rollback), cause=cause)  # type: ignore[arg-type]
    return dict(json.loads(event.encode()))


def rule_metric(payload: dict[str, Any], device: str, layout: TopicLayout = LAYOUT) -> str | None:
    """The metric name the rollback rule puts a datapoint under for this message, or None (not selected)."""
    rule = parse_rule(rollback_sql(layout))
    topic = layout.template.format(device=device, type="health", model="m", component="c")
    if not rule.matches(topic, payload, client_id=device):
        return None
    return substitute(METRIC_NAME_TEMPLATE, payload, topic, device)


def deliver(cloudwatch: Any, namespace: str, payload: dict[str, Any], device: str, received: dt.datetime) -> bool:
    """What AWS IoT does with the message under the stack's rule: PutMetricData (value 1, Count) at receipt."""
    name = rule_metric(payload, device)
    if name is None:
        return False
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": name, "Value": 1.0, "Unit": "Count", "Timestamp": received}])
    return True
