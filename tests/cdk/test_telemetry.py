"""Topic rules -> Firehose -> S3, alerts -> SNS + metric, device rollbacks -> the rollouts' metric, failed
deliveries -> the error log group."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .cfn import Synth, allow
from .conftest import require_cdk
from .iot_sql import parse_rule

require_cdk()

IOT_RULE_TRUST = [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"},
                   "Condition": {"StringEquals": {"aws:SourceAccount": "ACCOUNT"},
                                 "ArnLike": {"aws:SourceArn": "arn:aws:iot:REGION:ACCOUNT:rule/*"}}}]
ERROR_LOGS = allow("LogDeliveryErrors", ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                   ["<Rules/RuleErrors.Arn>"])


def test_archive_rule_sends_every_event_type_with_its_origin_to_firehose(synth: Synth) -> None:
    props = synth.props("Rules/ArchiveRule")
    assert props["RuleName"] == "edgeinfer_telemetry_archive"
    payload = props["TopicRulePayload"]
    assert payload["Sql"] == (
        "SELECT *, topic(2) AS iot_thing, topic(3) AS iot_event_type, clientid() AS iot_client_id, "
        "timestamp() AS iot_received_ms FROM 'edgeinfer/+/+' WHERE topic(3) = 'alert' OR topic(3) = 'cloud' "
        "OR topic(3) = 'health' OR topic(3) = 'result' OR topic(3) = 'summary'")
    # not cmd, cmd/reply or snapshot (binary JPEG)
    assert payload["AwsIotSqlVersion"] == "2016-03-23" and payload["RuleDisabled"] is False
    assert payload["Actions"] == [{"Firehose": {"DeliveryStreamName": "<Archive/Stream>",
                                                "RoleArn": "<Rules/ArchiveRuleRole.Arn>"}}]
    assert payload["ErrorAction"] == {"CloudwatchLogs": {"LogGroupName": "<Rules/RuleErrors>",
                                                         "RoleArn": "<Rules/ArchiveRuleRole.Arn>"}}


def test_alert_rule_notifies_and_counts(synth: Synth) -> None:
    payload = synth.props("Rules/AlertRule")["TopicRulePayload"]
    assert payload["Sql"] == "SELECT *, topic(2) AS iot_thing, clientid() AS iot_client_id FROM 'edgeinfer/+/alert'"
    role = "<Rules/AlertRuleRole.Arn>"
    assert payload["Actions"] == [
        {"Sns": {"MessageFormat": "JSON", "RoleArn": role, "TargetArn": "<Rules/Alerts>"}},
        {"CloudwatchMetric": {"MetricName": "Alerts", "MetricNamespace": "edgeinfer/edgeinfer", "MetricUnit": "Count",
                              "MetricValue": "1", "RoleArn": role}}]
    assert payload["ErrorAction"] == {"CloudwatchLogs": {"LogGroupName": "<Rules/RuleErrors>", "RoleArn": role}}


def test_rule_roles_are_for_iot_rules_of_this_account_and_do_one_job_each(synth: Synth) -> None:
    for role in ("Rules/ArchiveRuleRole", "Rules/AlertRuleRole", "Rules/RollbackRuleRole", "Rules/MetricsRuleRole"):
        assert synth.trust(role) == IOT_RULE_TRUST
    assert synth.statements("Rules/ArchiveRuleRole") == [
        ERROR_LOGS, allow("PutTelemetry", ["firehose:PutRecord", "firehose:PutRecordBatch"], ["<Archive/Stream.Arn>"])]
    assert synth.statements("Rules/AlertRuleRole") == [
        ERROR_LOGS, allow("NotifyAlerts", ["sns:Publish"], ["<Rules/Alerts>"]),
        allow("EncryptAlerts", ["kms:Decrypt", "kms:GenerateDataKey"], ["<Rules/AlertsKey.Arn>"]),
        allow("CountAlerts", ["cloudwatch:PutMetricData"], ["*"],
              {"StringEquals": {"cloudwatch:namespace": "edgeinfer/edgeinfer"}})]
    assert synth.statements("Rules/RollbackRuleRole") == [
        ERROR_LOGS, allow("CountRollbacks", ["cloudwatch:PutMetricData"], ["*"],
                          {"StringEquals": {"cloudwatch:namespace": "edgeinfer/edgeinfer"}})]


def test_rollback_rule_counts_each_device_rollback_under_the_name_the_rollout_reads(synth: Synth) -> None:
    props = synth.props("Rules/RollbackRule")
    assert props["RuleName"] == "edgeinfer_rollbacks"
    payload = props["TopicRulePayload"]
    assert payload["Sql"] == (
        "SELECT model.name AS model_name, get(run.rollback, 'from') AS rolled_back_from, topic(2) AS iot_thing, "
        "clientid() AS iot_client_id FROM 'edgeinfer/+/health' WHERE cause = 'rollback' "
        "AND NOT isUndefined(model.name) AND NOT isUndefined(get(run.rollback, 'from'))")
    assert payload["AwsIotSqlVersion"] == "2016-03-23" and payload["RuleDisabled"] is False
    role = "<Rules/RollbackRuleRole.Arn>"
    # the engine reads rollback_metric(model, version) = RolledBack/<model>/<version> in edgeinfer/<fleet>
    assert payload["Actions"] == [{"CloudwatchMetric": {
        "MetricName": "RolledBack/${model.name}/${get(run.rollback, 'from')}", "MetricNamespace": "edgeinfer/edgeinfer",
        "MetricUnit": "Count", "MetricValue": "1", "RoleArn": role}}]
    assert payload["ErrorAction"] == {"CloudwatchLogs": {"LogGroupName": "<Rules/RuleErrors>", "RoleArn": role}}


def _api(node: Any, key: str = "") -> Any:
    """A synthesised TopicRulePayload in the IoT API's own shape (camelCase keys, references made concrete)."""
    if isinstance(node, dict):
        return {k[0].lower() + k[1:]: _api(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_api(v, key) for v in node]
    if isinstance(node, str) and node.startswith("<"):
        return "arn:aws:iam::123456789012:role/rule" if key.endswith("Arn") else "resolved-name"
    return node


def test_every_rule_is_accepted_by_the_iot_api_and_parses_as_iot_sql(synth: Synth) -> None:
    """botocore validates each synthesised payload against IoT's CreateTopicRule model (moto stores it); the
    strict local IoT SQL reader (tests/cdk/iot_sql.py) parses each statement."""
    pytest.importorskip("moto", reason="moto (dev extra) stands in for IoT")
    import boto3
    from moto import mock_aws

    rules = {synth.props(p)["RuleName"]: synth.props(p)["TopicRulePayload"]
             for p in synth.of_type("AWS::IoT::TopicRule")}
    assert sorted(rules) == ["edgeinfer_alerts", "edgeinfer_fleet_degraded", "edgeinfer_fleet_health",
                             "edgeinfer_fleet_latency", "edgeinfer_fleet_throughput", "edgeinfer_rollbacks",
                             "edgeinfer_telemetry_archive"]
    with mock_aws():
        iot = boto3.client("iot", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
        for name, payload in rules.items():
            parse_rule(payload["Sql"])
            iot.create_topic_rule(ruleName=name, topicRulePayload=_api(payload))
            got = iot.get_topic_rule(ruleName=name)["rule"]
            assert got["sql"] == payload["Sql"] and got["actions"] == _api(payload)["actions"], name


def test_alerts_topic_is_encrypted_and_tls_only(synth: Synth) -> None:
    assert synth.props("Rules/Alerts")["KmsMasterKeyId"] == "<Rules/AlertsKey.Arn>"  # test_fleet_metrics: why
    policy = synth.props("Rules/Alerts/Policy")["PolicyDocument"]["Statement"]
    assert [s["Effect"] for s in policy] == ["Deny", "Allow"]  # the Allow: CloudWatch alarms (test_fleet_metrics)
    assert policy[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_firehose_partitions_by_type_and_event_day(synth: Synth) -> None:
    props = synth.props("Archive/Stream")
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = props["ExtendedS3DestinationConfiguration"]
    assert s3["BucketARN"] == "<Storage/Telemetry.Arn>" and s3["RoleARN"] == "<Archive/DeliveryRole.Arn>"
    # no device level: one Firehose partition per device would pass the stream's 500 active partitions at ~100
    # devices, and Athena could not project it for fleet-wide queries (archive.py)
    assert s3["Prefix"] == "telemetry/type=!{partitionKeyFromQuery:type}/date=!{partitionKeyFromQuery:date}/"
    assert s3["ErrorOutputPrefix"] == "delivery-errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/"
    assert s3["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert s3["CompressionFormat"] == "GZIP"
    assert s3["BufferingHints"] == {"IntervalInSeconds": 300, "SizeInMBs": 64}
    processors = {p["Type"]: {q["ParameterName"]: q["ParameterValue"] for q in p["Parameters"]}
                  for p in s3["ProcessingConfiguration"]["Processors"]}
    assert processors == {
        "MetadataExtraction": {"JsonParsingEngine": "JQ-1.6", "MetadataExtractionQuery":
                               '{type: .iot_event_type, date: ((.ts // "") | .[0:10])}'},
        "AppendDelimiterToRecord": {"Delimiter": "\\n"}}
    assert s3["CloudWatchLoggingOptions"] == {"Enabled": True, "LogGroupName": "<Archive/DeliveryLogs>",
                                              "LogStreamName": "S3Delivery"}


def test_firehose_role_writes_only_the_archive_prefixes(synth: Synth) -> None:
    assert synth.trust("Archive/DeliveryRole") == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"},
        "Condition": {"StringEquals": {"sts:ExternalId": "ACCOUNT"}}}]
    bucket = "<Storage/Telemetry.Arn>"
    assert synth.statements("Archive/DeliveryRole") == [
        allow("BucketLevel", ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"], [bucket]),
        allow("WriteArchive", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
              [f"{bucket}/delivery-errors/*", f"{bucket}/telemetry/*"]),
        allow("DeliveryErrorLogs", ["logs:PutLogEvents"],
              ["arn:aws:logs:REGION:ACCOUNT:log-group:<Archive/DeliveryLogs>:log-stream:S3Delivery"]),
    ]


def test_log_groups_expire(synth: Synth) -> None:
    for path in synth.of_type("AWS::Logs::LogGroup"):
        assert synth.props(path).get("RetentionInDays") in (30, 90), path


def test_the_partition_query_reads_what_the_rule_adds(synth: Synth) -> None:
    """The JQ query reads the field the archive rule's SQL adds, plus the event's own ts."""
    sql = synth.props("Rules/ArchiveRule")["TopicRulePayload"]["Sql"]
    query = json.dumps(synth.props("Archive/Stream"))
    for field in ("iot_event_type",):
        assert f"AS {field}" in sql and f".{field}" in query
