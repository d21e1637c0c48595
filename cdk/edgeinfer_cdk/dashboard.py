"""The fleet's CloudWatch dashboard and alarms, over the metrics the telemetry topic rules put (fleet_metrics.py).

Every alarm notifies the alerts topic (the one the alert rule publishes device alerts to) when it fires and
when it clears. Thresholds are context values (config.py, docs/cdk.md). Alarm names start with
``<fleet>-`` so the alerts key and topic let CloudWatch publish for this fleet's alarms only.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import fleet_metrics as fm
from .config import FleetConfig
from .rules import ALERT_METRIC, metric_namespace

PERIOD = Duration.minutes(5)


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    cid: str
    metric: str
    statistic: str
    comparison: cw.ComparisonOperator
    threshold: float
    periods: int  # consecutive 5-minute periods
    missing: cw.TreatMissingData
    what: str


def alarm_specs(cfg: FleetConfig) -> list[AlarmSpec]:
    gt, lt = cw.ComparisonOperator.GREATER_THAN_THRESHOLD, cw.ComparisonOperator.LESS_THAN_THRESHOLD
    ge = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    missing, breaching = cw.TreatMissingData.MISSING, cw.TreatMissingData.BREACHING
    return [
        AlarmSpec("FpsLow", fm.FPS, "Average", lt, cfg.alarm_min_fps, 3, missing,
                  f"the fleet's mean fps stayed below {cfg.alarm_min_fps:g} for 15 minutes"),
        AlarmSpec("LatencyHigh", fm.LATENCY_P95, "p95", gt, cfg.alarm_latency_p95_ms, 3, missing,
                  f"the p95 of the devices' capture-to-result p95 stayed above {cfg.alarm_latency_p95_ms:g} ms "
                  "for 15 minutes"),
        AlarmSpec("DevicesDegraded", fm.DEGRADED_REPORTS, "Sum", ge, cfg.alarm_degraded_reports, 1, missing,
                  f"at least {cfg.alarm_degraded_reports} degraded health reports in 5 minutes (a degraded device "
                  "sends one per health interval, 60 s by default)"),
        AlarmSpec("OutboxBacklog", fm.OUTBOX_DEPTH, "Maximum", gt, cfg.alarm_outbox_depth, 3, missing,
                  f"a device held more than {cfg.alarm_outbox_depth} undelivered events for 15 minutes"),
        AlarmSpec("AlertBurst", ALERT_METRIC, "Sum", gt, cfg.alarm_alerts, 1, missing,
                  f"more than {cfg.alarm_alerts} alerts from the fleet in 5 minutes"),
        AlarmSpec("FleetSilent", fm.HEALTH_REPORTS, "SampleCount", lt, 1, 3, breaching,
                  "no health report from any device for 15 minutes (devices, IoT Core or the rules are down)"),
    ]


class FleetDashboard(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, alerts: sns.ITopic, alerts_key: kms.IKey) -> None:
        super().__init__(scope, cid)
        self.namespace = metric_namespace(cfg)
        self._grant_alarms(cfg, alerts, alerts_key)
        action = cw_actions.SnsAction(alerts)
        self.alarms: dict[str, cw.Alarm] = {}
        for spec in alarm_specs(cfg):
            alarm = cw.Alarm(self, spec.cid, alarm_name=f"{cfg.fleet}-{spec.cid}", alarm_description=spec.what,
                             metric=self.metric(spec.metric, spec.statistic), threshold=spec.threshold,
                             comparison_operator=spec.comparison, evaluation_periods=spec.periods,
                             datapoints_to_alarm=spec.periods, treat_missing_data=spec.missing)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[spec.cid] = alarm
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{cfg.fleet}-fleet",
                                      default_interval=Duration.hours(6), widgets=self._widgets())

    def metric(self, name: str, statistic: str, label: str | None = None) -> cw.Metric:
        return cw.Metric(namespace=self.namespace, metric_name=name, statistic=statistic, period=PERIOD, label=label)

    def _widgets(self) -> list[list[cw.IWidget]]:
        m = self.metric
        degraded_devices = cw.MathExpression(
            expression=f"SUM(SEARCH('{{{self.namespace}}} MetricName={fm.DEGRADED_DEVICE}', 'Maximum', 300))",
            label="degraded devices", period=PERIOD)
        return [
            [cw.TextWidget(markdown="# edgeinfer fleet\nFrom the devices' summary and health events (IoT rules -> "
                           "CloudWatch). Per-device history: Athena (docs/cdk.md).", width=24, height=2)],
            [cw.GraphWidget(title="fps (per device window)", width=8, left=[
                m(fm.FPS, "Average", "mean"), m(fm.FPS, "Minimum", "slowest device")]),
             cw.GraphWidget(title="capture-to-result p95 (ms)", width=8, left=[
                 m(fm.LATENCY_P95, "p50", "median device"), m(fm.LATENCY_P95, "p95", "p95 of devices"),
                 m(fm.LATENCY_P95, "Maximum", "worst device")]),
             cw.GraphWidget(title="frames / dropped per 5 min", width=8, left=[
                 m(fm.FRAMES, "Sum", "frames"), m(fm.DROPPED, "Sum", "dropped")])],
            [cw.GraphWidget(title="degraded", width=8, left=[degraded_devices],
                            right=[m(fm.DEGRADED_REPORTS, "Sum", "degraded reports")]),
             cw.GraphWidget(title="outbox backlog", width=8, left=[
                 m(fm.OUTBOX_DEPTH, "Maximum", "largest device backlog (events)"),
                 m(fm.OUTBOX_DEPTH, "Average", "mean backlog (events)")],
                 right=[m(fm.OUTBOX_BYTES, "Maximum", "largest backlog (bytes)")]),
             cw.GraphWidget(title="alerts and health reports per 5 min", width=8, left=[
                 m(ALERT_METRIC, "Sum", "alerts")], right=[m(fm.HEALTH_REPORTS, "SampleCount", "health reports")])],
            [cw.AlarmStatusWidget(title="alarms", width=24, height=3, alarms=list(self.alarms.values()))],
        ]

    def _grant_alarms(self, cfg: FleetConfig, topic: sns.ITopic, key: kms.IKey) -> None:
        """CloudWatch publishes this fleet's alarms to the encrypted topic: the topic and its key say so."""
        conditions = {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                      "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}"
                                                   f":alarm:{cfg.fleet}-*"}}
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AlarmsPublish", principals=[cloudwatch], actions=["sns:Publish"], resources=[topic.topic_arn],
            conditions=conditions))
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="AlarmsEncrypt", principals=[cloudwatch], actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"], conditions=conditions))
