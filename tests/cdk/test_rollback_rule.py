"""The rollback topic rule's IoT SQL and metric name, read by a strict local IoT SQL parser (tests/cdk/iot_sql.py)
against the health events a device really sends and the schema they follow, and against what the rollout
engine reads. (test_telemetry.py checks the synthesised rule; this needs no CDK.)"""

from __future__ import annotations

import json

import pytest
from edgeinfer_cdk.rollback_rule import METRIC_NAME_TEMPLATE, rollback_sql
from edgeinfer_cdk.topics import TopicLayout

from edgeinfer.cloud.rollout.contract import Rollback, rollback_metric
from edgeinfer.core.telemetry.events import parse_event

from .conftest import ROOT
from .iot_sql import IotSqlError, parse_expression, parse_rule, schema_resolves
from .rollback_events import LAYOUT, health_payload, rule_metric

SCHEMA = json.loads((ROOT / "docs" / "telemetry-schema.json").read_text())


def test_the_sql_parses_and_reads_only_fields_of_the_health_event_schema() -> None:
    rule = parse_rule(rollback_sql(LAYOUT))
    assert rule.topic_filter == "edgeinfer/+/health"
    assert sorted(set(rule.paths())) == [("cause",), ("model", "name"), ("run", "rollback", "from")]
    for path in rule.paths():
        assert schema_resolves(SCHEMA, "HealthEvent", path), path
    for bad in (("run", "rollback", "form"), ("model", "label"), ("causes",)):
        assert not schema_resolves(SCHEMA, "HealthEvent", bad)  # the check can fail


def test_the_metric_template_reads_only_the_original_payload() -> None:
    template_fields = [parse_expression(e) for e in ("model.name", "get(run.rollback, 'from')")]
    assert METRIC_NAME_TEMPLATE == "RolledBack/${model.name}/${get(run.rollback, 'from')}"
    assert all(f.kind in ("path", "call") for f in template_fields)
    assert "AS" not in METRIC_NAME_TEMPLATE  # aliases of the SELECT are not visible to templates


def test_from_is_a_keyword_so_the_rule_reads_it_with_get() -> None:
    with pytest.raises(IotSqlError):
        parse_rule("SELECT * FROM 'edgeinfer/+/health' WHERE run.rollback.from = '2.0.0'")


def test_one_datapoint_per_rollback_under_the_name_the_engine_reads() -> None:
    at_rollback = health_payload("cam-1", "blazeface-full-range", "1.0.0", rolled_back_from="2.0.0", cause="rollback")
    parse_event(at_rollback)  # the device's own schema accepts it
    assert Rollback.read(at_rollback) is not None  # and so does the rollout contract
    assert rule_metric(at_rollback, "cam-1") == rollback_metric("blazeface-full-range", "2.0.0") == \
        "RolledBack/blazeface-full-range/2.0.0"
    later = health_payload("cam-1", "blazeface-full-range", "1.0.0", rolled_back_from="2.0.0")  # still carries it
    kept = health_payload("cam-1", "blazeface-full-range", "2.0.0", cause="probation_passed")
    plain = health_payload("cam-1", "blazeface-full-range", "2.0.0")
    assert [rule_metric(p, "cam-1") for p in (later, kept, plain)] == [None, None, None]
    broken = {**at_rollback, "run": {"state": "running"}}  # cause without the rollback: not counted under "…/"
    assert rule_metric(broken, "cam-1") is None


def test_only_health_events_on_the_telemetry_topic_are_read() -> None:
    payload = health_payload("cam-1", "faces", "1.0.0", rolled_back_from="2.0.0", cause="rollback")
    rule = parse_rule(rollback_sql(LAYOUT))
    assert rule.matches("edgeinfer/cam-1/health", payload)
    for topic in ("edgeinfer/cam-1/alert", "edgeinfer/cam-1/health/x", "other/cam-1/health"):
        assert not rule.matches(topic, payload), topic
    custom = TopicLayout("plant/{model}/{device}/{type}")
    assert parse_rule(rollback_sql(custom)).topic_filter == "plant/+/+/health"
    assert rule_metric(payload, "cam-1", custom) == "RolledBack/faces/2.0.0"
