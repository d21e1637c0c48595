"""IoT topic rules: every telemetry event -> the archive; alerts -> SNS and a CloudWatch metric; each
device rollback -> one datapoint of the rollout's rollback metric (rollback_rule.py); summary and health events
-> the fleet's CloudWatch metrics (fleet_metrics.py) that the dashboard and alarms read (dashboard.py).

Both rules add where a message came from: ``iot_thing`` (the thing named by the topic, which the
IoT policies bind to the publisher), ``iot_event_type`` and ``iot_client_id`` (the MQTT client that
published; a Greengrass core's client ID is its thing name, with ``#n`` on extra connections).
Messages must be single JSON events: keep ``telemetry.batch`` and ``telemetry.gzip`` off (their
defaults) for fleets that use these rules. A failed delivery goes to the rules' error log group.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .config import FleetConfig
from .fleet_metrics import METRIC_RULES, MetricRule, datapoints
from .grants import allow
from .rollback_rule import METRIC_NAME_TEMPLATE, rollback_sql
from .topics import EVENT_TYPES, TopicLayout

SQL_VERSION = "2016-03-23"
ALERT_METRIC = "Alerts"
PUT_METRICS_WHY = "PutMetricData takes no resource; the condition limits it to the fleet's own metric namespace"


def metric_namespace(cfg: FleetConfig) -> str:
    return f"edgeinfer/{cfg.fleet}"


def rule_prefix(cfg: FleetConfig) -> str:
    return cfg.fleet.replace("-", "_")  # rule names allow [a-zA-Z0-9_] only


def archive_sql(layout: TopicLayout) -> str:
    kind = f"topic({layout.level('type')})"
    where = " OR ".join(f"{kind} = '{t}'" for t in EVENT_TYPES)
    return (f"SELECT *, topic({layout.level('device')}) AS iot_thing, {kind} AS iot_event_type, "
            f"clientid() AS iot_client_id, timestamp() AS iot_received_ms FROM '{layout.rule_filter()}' WHERE {where}")


def alert_sql(layout: TopicLayout) -> str:
    return (f"SELECT *, topic({layout.level('device')}) AS iot_thing, clientid() AS iot_client_id "
            f"FROM '{layout.rule_filter('alert')}'")


class TelemetryRules(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, layout: TopicLayout,
                 delivery_stream_arn: str, delivery_stream_name: str) -> None:
        super().__init__(scope, cid)
        # A key of our own, not alias/aws/sns: CloudWatch alarms cannot publish to a topic encrypted with the
        # AWS-managed key (its key policy cannot be changed to let cloudwatch.amazonaws.com use it).
        self.alerts_key = kms.Key(self, "AlertsKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                                  description=f"edgeinfer {cfg.fleet}: encrypts the alerts topic")
        self.alerts = sns.Topic(self, "Alerts", display_name=f"edgeinfer {cfg.fleet} alerts", enforce_ssl=True,
                                master_key=self.alerts_key)
        self.error_logs = logs.LogGroup(self, "RuleErrors", retention=logs.RetentionDays.ONE_MONTH,
                                        removal_policy=RemovalPolicy.DESTROY)
        prefix = rule_prefix(cfg)

        archive_role = self._role("ArchiveRuleRole", "archive telemetry: put records to the Firehose stream")
        allow(archive_role, "PutTelemetry", ["firehose:PutRecord", "firehose:PutRecordBatch"], [delivery_stream_arn])
        self.archive_rule = iot.CfnTopicRule(self, "ArchiveRule", rule_name=f"{prefix}_telemetry_archive",
                                             topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
            sql=archive_sql(layout), aws_iot_sql_version=SQL_VERSION, rule_disabled=False,
            description="every edgeinfer telemetry event -> Firehose -> S3",
            actions=[iot.CfnTopicRule.ActionProperty(firehose=iot.CfnTopicRule.FirehoseActionProperty(
                delivery_stream_name=delivery_stream_name, role_arn=archive_role.role_arn))],
            error_action=self._error_action(archive_role)))

        alert_role = self._role("AlertRuleRole", "alerts: notify the SNS topic and count them in CloudWatch")
        allow(alert_role, "NotifyAlerts", ["sns:Publish"], [self.alerts.topic_arn])
        allow(alert_role, "EncryptAlerts", ["kms:Decrypt", "kms:GenerateDataKey"], [self.alerts_key.key_arn])
        allow(alert_role, "CountAlerts", ["cloudwatch:PutMetricData"], ["*"],
              conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace(cfg)}}, why=PUT_METRICS_WHY)
        self.alert_rule = iot.CfnTopicRule(self, "AlertRule", rule_name=f"{prefix}_alerts",
                                           topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
            sql=alert_sql(layout), aws_iot_sql_version=SQL_VERSION, rule_disabled=False,
            description="edgeinfer alerts -> SNS + CloudWatch metric",
            actions=[
                iot.CfnTopicRule.ActionProperty(sns=iot.CfnTopicRule.SnsActionProperty(
                    target_arn=self.alerts.topic_arn, role_arn=alert_role.role_arn, message_format="JSON")),
                iot.CfnTopicRule.ActionProperty(cloudwatch_metric=iot.CfnTopicRule.CloudwatchMetricActionProperty(
                    metric_namespace=metric_namespace(cfg), metric_name=ALERT_METRIC, metric_value="1",
                    metric_unit="Count", role_arn=alert_role.role_arn))],
            error_action=self._error_action(alert_role)))

        rollback_role = self._role("RollbackRuleRole", "device rollbacks: count them in CloudWatch")
        allow(rollback_role, "CountRollbacks", ["cloudwatch:PutMetricData"], ["*"],
              conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace(cfg)}}, why=PUT_METRICS_WHY)
        self.rollback_rule = iot.CfnTopicRule(self, "RollbackRule", rule_name=f"{prefix}_rollbacks",
                                              topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
            sql=rollback_sql(layout), aws_iot_sql_version=SQL_VERSION, rule_disabled=False,
            description="edgeinfer health events sent at a device rollback -> the rollouts' CloudWatch metric",
            actions=[iot.CfnTopicRule.ActionProperty(cloudwatch_metric=iot.CfnTopicRule.CloudwatchMetricActionProperty(
                metric_namespace=metric_namespace(cfg), metric_name=METRIC_NAME_TEMPLATE, metric_value="1",
                metric_unit="Count", role_arn=rollback_role.role_arn))],
            error_action=self._error_action(rollback_role)))

        metrics_role = self._role("MetricsRuleRole", "fleet metrics: datapoints of summary and health events")
        allow(metrics_role, "PutFleetMetrics", ["cloudwatch:PutMetricData"], ["*"],
              conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace(cfg)}}, why=PUT_METRICS_WHY)
        self.metric_rules = {r.key: self._metric_rule(r, cfg, layout, metrics_role) for r in METRIC_RULES}

    def _metric_rule(self, rule: MetricRule, cfg: FleetConfig, layout: TopicLayout,
                     role: iam.IRole) -> iot.CfnTopicRule:
        cid = "".join(part.title() for part in rule.key.split("_")) + "Rule"
        return iot.CfnTopicRule(self, cid, rule_name=f"{rule_prefix(cfg)}_{rule.key}",
                                topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
            sql=rule.sql(layout), aws_iot_sql_version=SQL_VERSION, rule_disabled=False, description=rule.description,
            actions=[iot.CfnTopicRule.ActionProperty(cloudwatch_metric=iot.CfnTopicRule.CloudwatchMetricActionProperty(
                metric_namespace=metric_namespace(cfg), metric_name=d.metric, metric_value=d.value,
                metric_unit=d.unit, role_arn=role.role_arn)) for d in datapoints(rule, layout)],
            error_action=self._error_action(role)))

    def _role(self, cid: str, purpose: str) -> iam.Role:
        """A role only AWS IoT rules of this account and region can assume (confused-deputy conditions)."""
        role = iam.Role(self, cid, description=f"IoT rule: {purpose}", assumed_by=iam.ServicePrincipal(
            "iot.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:iot:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/*"}}))
        allow(role, "LogDeliveryErrors", ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
              [self.error_logs.log_group_arn])
        return role

    def _error_action(self, role: iam.IRole) -> iot.CfnTopicRule.ActionProperty:
        return iot.CfnTopicRule.ActionProperty(cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
            log_group_name=self.error_logs.log_group_name, role_arn=role.role_arn))

