"""The fleet's CloudWatch metrics, made by IoT topic rules from summary and health events: plain strings, no aws_cdk.

An IoT rule's ``cloudwatchMetric`` action puts one datapoint per matching message; it takes no dimensions, so a
metric name is all there is. Fleet-level names (``Fps``, ``LatencyP95``, ...) cost the same for 10 or 10,000
devices: CloudWatch's statistics over the devices' datapoints give the fleet view (``Average`` fps, ``Minimum``
for the slowest device, ``p95`` of the devices' window p95s, ``Maximum`` backlog). The one per-device name,
``DegradedDevice/<thing>``, is put only while a device reports itself degraded, so it costs in proportion to
the devices in trouble, not the fleet (CloudWatch bills a custom metric for the hours it receives data).

Substitution templates (``${...}``) read the ORIGINAL payload, never the SELECT's aliases. Each rule's WHERE
makes sure every template it uses is defined (a summary of an idle window has no ``latency_ms.total``), so a
normal event never lands in the rules' error log. Field names are those of docs/telemetry-schema.json.
"""

from __future__ import annotations

from dataclasses import dataclass

from .topics import TopicLayout


@dataclass(frozen=True, slots=True)
class Datapoint:
    metric: str  # metric name (a substitution template only for the per-device one)
    value: str  # "1", or a substitution template of the event's own numeric field
    unit: str


@dataclass(frozen=True, slots=True)
class MetricRule:
    key: str  # rule name suffix and construct id
    event_type: str
    where: str | None
    datapoints: tuple[Datapoint, ...]
    description: str

    def sql(self, layout: TopicLayout) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return (f"SELECT topic({layout.level('device')}) AS iot_thing, clientid() AS iot_client_id "
                f"FROM '{layout.rule_filter(self.event_type)}'{where}")


FPS, LATENCY_P95, FRAMES, DROPPED = "Fps", "LatencyP95", "Frames", "DroppedFrames"
HEALTH_REPORTS, DEGRADED_REPORTS, DEGRADED_DEVICE = "HealthReports", "DegradedReports", "DegradedDevice"
OUTBOX_DEPTH, OUTBOX_BYTES = "OutboxDepth", "OutboxBytes"
DEVICE = "<device>"  # in a metric name: the publishing thing

METRIC_RULES: tuple[MetricRule, ...] = (
    MetricRule("fleet_throughput", "summary", None, (
        Datapoint(FPS, "${fps}", "Count/Second"),
        Datapoint(FRAMES, "${frames}", "Count"),
        Datapoint(DROPPED, "${dropped}", "Count")),
        "summary windows -> fleet Fps (one datapoint per device window), Frames, DroppedFrames"),
    MetricRule("fleet_latency", "summary", "NOT isUndefined(latency_ms.total.p95)", (
        Datapoint(LATENCY_P95, "${latency_ms.total.p95}", "Milliseconds"),),
        "summary windows with frames -> fleet LatencyP95 (each device window's capture-to-result p95)"),
    MetricRule("fleet_health", "health", "NOT isUndefined(outbox.depth)", (
        Datapoint(HEALTH_REPORTS, "1", "Count"),
        Datapoint(OUTBOX_DEPTH, "${outbox.depth}", "Count"),
        Datapoint(OUTBOX_BYTES, "${outbox.bytes}", "Bytes")),
        "health events -> fleet HealthReports, OutboxDepth, OutboxBytes (the devices' undelivered backlog)"),
    MetricRule("fleet_degraded", "health", "degraded = true OR telemetry.degraded = true", (
        Datapoint(DEGRADED_REPORTS, "1", "Count"),
        Datapoint(f"{DEGRADED_DEVICE}/{DEVICE}", "1", "Count")),
        "health events of devices on a fallback backend or with failing telemetry storage -> "
        "DegradedReports and DegradedDevice/<thing>"),
)


def datapoints(rule: MetricRule, layout: TopicLayout) -> tuple[Datapoint, ...]:
    """The rule's datapoints with ``<device>`` made the thing's topic level (``${topic(n)}``)."""
    device = f"${{topic({layout.level('device')})}}"
    return tuple(Datapoint(d.metric.replace(DEVICE, device), d.value, d.unit) for d in rule.datapoints)
