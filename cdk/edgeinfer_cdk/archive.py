"""Telemetry archive: Kinesis Data Firehose -> S3, partitioned by event type and day.

Each record is one telemetry event as the topic rule emits it (the device's JSON plus ``iot_thing``,
``iot_event_type``, ``iot_client_id``, ``iot_received_ms``). Firehose reads the partition keys with
JQ and writes gzip'd newline-delimited JSON to
``telemetry/type=<type>/date=<YYYY-MM-DD of the event's ts>/`` (Hive style; athena.py projects it for
Athena). The date is the event's own UTC day, so events that arrive after days offline land on the day
they happened. Records that cannot be partitioned go to ``delivery-errors/``.

The device is a column (``iot_thing``), not a key level: a per-device level would make every device's
stream its own Firehose partition, and a delivery stream buffers at most 500 active partitions (5,000 on
request) before it sends the rest to ``delivery-errors/`` (about 100 devices with 5 event types); and
Athena could only project such a level as ``injected``, which refuses every query that does not name the
devices, i.e. every fleet-wide one.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .grants import allow

TYPE_KEY = "!{partitionKeyFromQuery:type}"
DATE_KEY = "!{partitionKeyFromQuery:date}"
DATA_PREFIX = f"telemetry/type={TYPE_KEY}/date={DATE_KEY}/"
ERROR_PREFIX = "delivery-errors/!{firehose:error-output-type}/date=!{timestamp:yyyy-MM-dd}/"
PARTITION_QUERY = '{type: .iot_event_type, date: ((.ts // "") | .[0:10])}'
BUFFER_S = 300
BUFFER_MB = 64  # the minimum with dynamic partitioning
LOG_STREAM = "S3Delivery"


class TelemetryArchive(Construct):
    def __init__(self, scope: Construct, cid: str, bucket: s3.IBucket) -> None:
        super().__init__(scope, cid)
        self.log_group = logs.LogGroup(self, "DeliveryLogs", retention=logs.RetentionDays.ONE_MONTH,
                                       removal_policy=RemovalPolicy.DESTROY)
        stream = logs.LogStream(self, "DeliveryLogStream", log_group=self.log_group, log_stream_name=LOG_STREAM,
                                removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "DeliveryRole", assumed_by=iam.ServicePrincipal(
            "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}}),
            description="Firehose writes archived telemetry to the telemetry bucket")
        allow(self.role, "BucketLevel", ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
              [bucket.bucket_arn])
        allow(self.role, "WriteArchive", ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
              [bucket.arn_for_objects("telemetry/*"), bucket.arn_for_objects("delivery-errors/*")],
              why="Firehose names each object at delivery time (partition keys, time, random suffix); it may write "
                  "only below the archive's two prefixes")
        allow(self.role, "DeliveryErrorLogs", ["logs:PutLogEvents"],
              [Stack.of(self).format_arn(service="logs", resource="log-group", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                         resource_name=f"{self.log_group.log_group_name}:log-stream:{LOG_STREAM}")])

        self.stream = firehose.CfnDeliveryStream(
            self, "Stream", delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream
            .DeliveryStreamEncryptionConfigurationInputProperty(key_type="AWS_OWNED_CMK"),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn, role_arn=self.role.role_arn, prefix=DATA_PREFIX,
                error_output_prefix=ERROR_PREFIX, compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=BUFFER_S, size_in_m_bs=BUFFER_MB),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True, retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                        duration_in_seconds=300)),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True, processors=[
                        _processor("MetadataExtraction", MetadataExtractionQuery=PARTITION_QUERY,
                                   JsonParsingEngine="JQ-1.6"),
                        _processor("AppendDelimiterToRecord", Delimiter="\\n")]),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=self.log_group.log_group_name, log_stream_name=LOG_STREAM)))
        self.stream.node.add_dependency(self.role, stream)


def _processor(kind: str, **params: str) -> firehose.CfnDeliveryStream.ProcessorProperty:
    return firehose.CfnDeliveryStream.ProcessorProperty(type=kind, parameters=[
        firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=k, parameter_value=v)
        for k, v in params.items()])
