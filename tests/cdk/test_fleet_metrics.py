"""Fleet metrics rules -> CloudWatch -> dashboard and alarms -> the alerts topic: the synthesised rules, role,
alarms, dashboard and the key/topic grants statement by statement; the rules read by the strict local IoT SQL
reader against the schema and run on events built by the core's own models."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from edgeinfer_cdk.fleet_metrics import METRIC_RULES, datapoints

from edgeinfer.core.telemetry.events import OutboxState, Percentiles, SummaryEvent

from .cfn import Synth, allow
from .conftest import ROOT, require_cdk
from .iot_sql import parse_expression, parse_rule, substitute
from .rollback_events import LAYOUT, health_payload

require_cdk()

SCHEMA = json.loads((ROOT / "docs" / "telemetry-schema.json").read_text())
NS = "edgeinfer/edgeinfer"
RULES = {  # rule name -> (SQL, [(metric, value, unit)])
    "edgeinfer_fleet_throughput": (
        "SELECT topic(2) AS iot_thing, clientid() AS iot_client_id FROM 'edgeinfer/+/summary'",
        [("Fps", "${fps}", "Count/Second"), ("Frames", "${frames}", "Count"),
         ("DroppedFrames", "${dropped}", "Count")]),
    "edgeinfer_fleet_latency": (
        "SELECT topic(2) AS iot_thing, clientid() AS iot_client_id FROM 'edgeinfer/+/summary' "
        "WHERE NOT isUndefined(latency_ms.total.p95)",
        [("LatencyP95", "${latency_ms.total.p95}", "Milliseconds")]),
    "edgeinfer_fleet_health": (
        "SELECT topic(2) AS iot_thing, clientid() AS iot_client_id FROM 'edgeinfer/+/health' "
        "WHERE NOT isUndefined(outbox.depth)",
        [("HealthReports", "1", "Count"), ("OutboxDepth", "${outbox.depth}", "Count"),
         ("OutboxBytes", "${outbox.bytes}", "Bytes")]),
    "edgeinfer_fleet_degraded": (
        "SELECT topic(2) AS iot_thing, clientid() AS iot_client_id FROM 'edgeinfer/+/health' "
        "WHERE degraded = true OR telemetry.degraded = true",
        [("DegradedReports", "1", "Count"), ("DegradedDevice/${topic(2)}", "1", "Count")]),
}
ALARMS = {  # construct -> (metric, statistic, comparison, threshold, periods, missing data)
    "FpsLow": ("Fps", "Average", "LessThanThreshold", 1, 3, "missing"),
    "LatencyHigh": ("LatencyP95", "p95", "GreaterThanThreshold", 1000, 3, "missing"),
    "DevicesDegraded": ("DegradedReports", "Sum", "GreaterThanOrEqualToThreshold", 1, 1, "missing"),
    "OutboxBacklog": ("OutboxDepth", "Maximum", "GreaterThanThreshold", 1000, 3, "missing"),
    "AlertBurst": ("Alerts", "Sum", "GreaterThanThreshold", 50, 1, "missing"),
    "FleetSilent": ("HealthReports", "SampleCount", "LessThanThreshold", 1, 3, "breaching"),
}
CW_CONDITION = {"StringEquals": {"aws:SourceAccount": "ACCOUNT"},
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:REGION:ACCOUNT:alarm:edgeinfer-*"}}


def _rules(synth: Synth) -> dict[str, dict[str, Any]]:
    return {synth.props(p)["RuleName"]: synth.props(p)["TopicRulePayload"]
            for p in synth.of_type("AWS::IoT::TopicRule")}


def test_metric_rules_put_fleet_level_datapoints_from_summary_and_health_events(synth: Synth) -> None:
    rules = _rules(synth)
    for name, (sql, points) in RULES.items():
        payload = rules[name]
        assert payload["Sql"] == sql, name
        assert payload["Actions"] == [{"CloudwatchMetric": {
            "MetricName": m, "MetricNamespace": NS, "MetricUnit": u, "MetricValue": v,
            "RoleArn": "<Rules/MetricsRuleRole.Arn>"}} for m, v, u in points], name
        assert payload["ErrorAction"] == {"CloudwatchLogs": {"LogGroupName": "<Rules/RuleErrors>",
                                                             "RoleArn": "<Rules/MetricsRuleRole.Arn>"}}
        assert payload["AwsIotSqlVersion"] == "2016-03-23" and payload["RuleDisabled"] is False


def test_metrics_role_may_only_put_metrics_in_the_fleet_namespace(synth: Synth) -> None:
    assert synth.statements("Rules/MetricsRuleRole") == [
        allow("LogDeliveryErrors", ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
              ["<Rules/RuleErrors.Arn>"]),
        allow("PutFleetMetrics", ["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": NS}})]


def _resolves(definition: str, path: tuple[str, ...]) -> bool:
    """Whether ``path`` names a field of ``definition``; a key of a map (``latency_ms.total``) is any name."""
    node: dict[str, Any] = SCHEMA["$defs"][definition]
    for part in path:
        while "$ref" in node or "anyOf" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else \
                next(n for n in node["anyOf"] if n.get("type") != "null")
        if part in (node.get("properties") or {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def test_rules_read_only_schema_fields_and_templates_read_the_original_payload() -> None:
    mapping = SCHEMA["discriminator"]["mapping"]
    for rule in METRIC_RULES:
        parsed = parse_rule(rule.sql(LAYOUT))
        definition = mapping[rule.event_type].rsplit("/", 1)[-1]
        paths = parsed.paths()
        for d in datapoints(rule, LAYOUT):
            for expr in re.findall(r"\$\{([^}]*)\}", d.metric + d.value):
                node = parse_expression(expr)
                assert node.kind in ("path", "call"), expr
                paths += [node.args] if node.kind == "path" else []
        for path in paths:
            assert _resolves(definition, path), (rule.key, path)
    assert not _resolves("SummaryEvent", ("latency_ms", "total", "p96")) and not _resolves("HealthEvent", ("fps",))


def _summary(frames: int) -> dict[str, Any]:
    latency = {"total": Percentiles(p50=40.0, p95=85.5, p99=90.0)} if frames else {}
    event = SummaryEvent(device="cam-1", model_version="1.0.0", start=0.0, end=60.0, frames=frames, fps=frames / 60,
                         dropped=2, labels={"face": 3}, latency_ms=latency)
    return dict(json.loads(event.encode()))


def _values(payload: dict[str, Any], event_type: str) -> dict[str, float]:
    """What AWS IoT would put for this message: metric name -> value, over every metric rule."""
    topic = f"edgeinfer/cam-1/{event_type}"
    out = {}
    for rule in METRIC_RULES:
        if parse_rule(rule.sql(LAYOUT)).matches(topic, payload, client_id="cam-1"):
            for d in datapoints(rule, LAYOUT):
                out[substitute(d.metric, payload, topic, "cam-1")] = float(substitute(d.value, payload, topic, "cam-1"))
    return out


def test_a_summary_window_becomes_fps_frames_dropped_and_latency() -> None:
    assert _values(_summary(120), "summary") == {"Fps": 2.0, "Frames": 120.0, "DroppedFrames": 2.0,
                                                 "LatencyP95": 85.5}
    assert _values(_summary(0), "summary") == {"Fps": 0.0, "Frames": 0.0, "DroppedFrames": 2.0}  # idle: no latency


def test_a_health_event_becomes_a_report_and_the_backlog_and_degraded_ones_are_counted() -> None:
    healthy = health_payload("cam-1", "faces", "1.0.0")
    healthy["outbox"] = json.loads(OutboxState(depth=42, bytes=4096).model_dump_json())
    assert _values(healthy, "health") == {"HealthReports": 1.0, "OutboxDepth": 42.0, "OutboxBytes": 4096.0}
    fallback = {**healthy, "degraded": True, "reason": "CUDA unavailable: running on CPU"}
    assert _values(fallback, "health") == {"HealthReports": 1.0, "OutboxDepth": 42.0, "OutboxBytes": 4096.0,
                                           "DegradedReports": 1.0, "DegradedDevice/cam-1": 1.0}
    disk_full = {**healthy, "telemetry": {"degraded": True, "reason": "outbox write failed"}}
    assert _values(disk_full, "health")["DegradedReports"] == 1.0
    assert _values(healthy, "alert") == {}  # the topic decides the event type


def test_alarms_watch_the_fleet_metrics_and_notify_the_alerts_topic(synth: Synth) -> None:
    assert synth.of_type("AWS::CloudWatch::Alarm") == sorted(f"Fleet/{a}" for a in ALARMS)
    put = {m for _, points in RULES.values() for m, _, _ in points} | {"Alerts"}
    for cid, (metric, stat, op, threshold, periods, missing) in ALARMS.items():
        props = synth.props(f"Fleet/{cid}")
        stat_key = "ExtendedStatistic" if stat.startswith("p") else "Statistic"
        assert metric in put
        assert {k: props[k] for k in ("AlarmName", "Namespace", "MetricName", stat_key, "Period",
                                      "ComparisonOperator", "Threshold", "EvaluationPeriods", "DatapointsToAlarm",
                                      "TreatMissingData", "AlarmActions", "OKActions")} == {
            "AlarmName": f"edgeinfer-{cid}", "Namespace": NS, "MetricName": metric, stat_key: stat, "Period": 300,
            "ComparisonOperator": op, "Threshold": threshold, "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods, "TreatMissingData": missing,
            "AlarmActions": ["<Rules/Alerts>"], "OKActions": ["<Rules/Alerts>"]}, cid
        assert len(props["AlarmDescription"]) > 30


def test_cloudwatch_may_publish_this_fleets_alarms_to_the_encrypted_topic(synth: Synth) -> None:
    """alias/aws/sns cannot be used by CloudWatch alarms: the topic has a key of its own whose policy lets
    cloudwatch.amazonaws.com encrypt for this account's edgeinfer-* alarms only; the alert rule's role uses it."""
    assert synth.props("Rules/Alerts")["KmsMasterKeyId"] == "<Rules/AlertsKey.Arn>"
    key = synth.props("Rules/AlertsKey")
    assert key["EnableKeyRotation"] is True
    by_sid = {s.get("Sid"): s for s in key["KeyPolicy"]["Statement"]}
    assert by_sid["AlarmsEncrypt"] == {"Sid": "AlarmsEncrypt", "Effect": "Allow", "Action": [
        "kms:Decrypt", "kms:GenerateDataKey"], "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Resource": "*",
        "Condition": CW_CONDITION}
    others = [s for sid, s in by_sid.items() if sid != "AlarmsEncrypt"]
    assert [s["Principal"] for s in others] == [{"AWS": "arn:aws:iam::ACCOUNT:root"}]  # CDK's default admin
    topic_policy = synth.props("Rules/Alerts/Policy")["PolicyDocument"]["Statement"]
    publish = [s for s in topic_policy if s["Effect"] == "Allow"]
    assert publish == [{"Sid": "AlarmsPublish", "Effect": "Allow", "Action": "sns:Publish",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Resource": "<Rules/Alerts>",
                        "Condition": CW_CONDITION}]
    assert allow("EncryptAlerts", ["kms:Decrypt", "kms:GenerateDataKey"], ["<Rules/AlertsKey.Arn>"]) in \
        synth.statements("Rules/AlertRuleRole")


def _dashboard(synth: Synth) -> dict[str, Any]:
    [path] = synth.of_type("AWS::CloudWatch::Dashboard")
    props = synth.props(path)
    assert props["DashboardName"] == "edgeinfer-fleet"
    return dict(json.loads(props["DashboardBody"]))


def test_dashboard_graphs_only_metrics_the_rules_put(synth: Synth) -> None:
    body = _dashboard(synth)
    put = {m for _, points in RULES.values() for m, _, _ in points} | {"Alerts"}
    graphed, searched, alarms = set(), [], []
    for w in body["widgets"]:
        for line in w["properties"].get("metrics", []):
            if isinstance(line[0], dict):  # a math expression
                searched.append(line[0]["expression"])
            else:
                assert line[0] == NS, line
                graphed.add(line[1])
        alarms += w["properties"].get("alarms", [])
    assert graphed == put - {"DegradedDevice/${topic(2)}"}
    assert searched == [f"SUM(SEARCH('{{{NS}}} MetricName=DegradedDevice', 'Maximum', 300))"]
    assert sorted(alarms) == sorted(f"<Fleet/{a}.Arn>" for a in ALARMS)


@pytest.mark.parametrize("bad", [{"alarm_min_fps": "0"}, {"alarm_alerts": "0"}, {"alarm_outbox_depth": "x"}])
def test_alarm_thresholds_are_checked(bad: dict[str, str]) -> None:
    from edgeinfer_cdk.config import ConfigError, FleetConfig

    with pytest.raises(ConfigError, match=next(iter(bad))):
        FleetConfig.from_context(bad.get)
    assert FleetConfig.from_context({"alarm_min_fps": "2.5"}.get).alarm_min_fps == 2.5
