"""The telemetry archive, queryable: a Glue database with one table per event type, partition projection over
the archive's own key layout (no crawler, no partitions to add), an Athena workgroup and saved queries.

Each table reads ``s3://<telemetry bucket>/telemetry/type=<type>/date=<day>/`` (archive.py's prefix with the
type fixed); its columns come from the events' JSON Schema (glue_schema.py), so a new event type or field
needs no edit here. ``day`` is projected as a date from ``NOW-<telemetry_expire_days>DAYS`` (older objects
have expired) to ``NOW+1DAYS`` (a device clock a little ahead). Query results go to ``athena-results/`` in
the telemetry bucket, SSE-S3, expiring after ``RESULTS_EXPIRE_DAYS`` (storage.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from edgeinfer.core.telemetry.events import export_schema

from .archive import DATA_PREFIX, DATE_KEY, TYPE_KEY
from .athena_queries import QUERIES, table
from .config import FleetConfig
from .glue_schema import columns, event_types
from .rules import rule_prefix

RESULTS_PREFIX = "athena-results/"
RESULTS_EXPIRE_DAYS = 30
DAY = "day"  # the partition column (``date`` is a keyword in Athena DDL)
BYTES_SCANNED_CUTOFF = 100 * 1024**3  # one query may scan at most 100 GiB (a runaway scan costs ~$0.50)
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"


def database_name(cfg: FleetConfig) -> str:
    return f"{rule_prefix(cfg)}_telemetry"


def type_prefix(event_type: str) -> str:
    """The archive's key prefix of one event type, up to (not including) the day."""
    upto_day = DATA_PREFIX.replace(TYPE_KEY, event_type).split(DATE_KEY)[0]  # telemetry/type=<t>/date=
    return upto_day.rsplit("/", 1)[0] + "/"


def location_template(event_type: str) -> str:
    """archive.DATA_PREFIX with the type fixed and the day as Athena's ``${day}`` placeholder."""
    return DATA_PREFIX.replace(TYPE_KEY, event_type).replace(DATE_KEY, f"${{{DAY}}}")


def table_parameters(bucket_url: str, event_type: str, expire_days: int) -> dict[str, str]:
    return {
        "classification": "json", "compressionType": "gzip", "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        f"projection.{DAY}.type": "date", f"projection.{DAY}.format": "yyyy-MM-dd",
        f"projection.{DAY}.range": f"NOW-{expire_days}DAYS,NOW+1DAYS",
        f"projection.{DAY}.interval": "1", f"projection.{DAY}.interval.unit": "DAYS",
        "storage.location.template": bucket_url + location_template(event_type),
    }


class TelemetryQueries(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, bucket: s3.IBucket) -> None:
        super().__init__(scope, cid)
        self.database_name = database_name(cfg)
        self.database = glue.CfnDatabase(self, "Database", catalog_id=Aws.ACCOUNT_ID,
                                         database_input=glue.CfnDatabase.DatabaseInputProperty(
            name=self.database_name, description=f"edgeinfer {cfg.fleet}: the telemetry archive, one table per type"))
        schema = export_schema()
        bucket_url = f"s3://{bucket.bucket_name}/"
        self.tables: dict[str, glue.CfnTable] = {}
        for event_type in event_types(schema):
            t = glue.CfnTable(self, f"{event_type.title()}Table", catalog_id=Aws.ACCOUNT_ID,
                              database_name=self.database_name, table_input=self._table(
                                  event_type, columns(schema, event_type), bucket_url, cfg.telemetry_expire_days))
            t.node.add_dependency(self.database)
            self.tables[event_type] = t
        self.workgroup = athena.CfnWorkGroup(
            self, "WorkGroup", name=f"{cfg.fleet}-telemetry", state="ENABLED", recursive_delete_option=True,
            description=f"edgeinfer {cfg.fleet}: queries over the telemetry archive",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True, publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"{bucket_url}{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"))))
        self.queries: dict[str, athena.CfnNamedQuery] = {}
        for q in QUERIES:
            named = athena.CfnNamedQuery(self, "".join(p.title() for p in q.key.split("_")) + "Query",
                                         database=self.database_name, name=f"{cfg.fleet}: {q.name}",
                                         description=q.description, work_group=self.workgroup.ref,
                                         query_string=q.sql.format(db=self.database_name))
            named.node.add_dependency(self.workgroup)
            self.queries[q.key] = named

    def _table(self, event_type: str, cols: list[tuple[str, str]], bucket_url: str,
               expire_days: int) -> glue.CfnTable.TableInputProperty:
        serde_params: dict[str, Any] = {"ignore.malformed.json": "true"}
        return glue.CfnTable.TableInputProperty(
            name=table(event_type), table_type="EXTERNAL_TABLE",
            description=f"edgeinfer '{event_type}' events (docs/telemetry-schema.json) as archived by Firehose",
            partition_keys=[glue.CfnTable.ColumnProperty(name=DAY, type="string",
                                                         comment="the event's UTC day, YYYY-MM-DD (projected)")],
            parameters=table_parameters(bucket_url, event_type, expire_days),
            storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                location=bucket_url + type_prefix(event_type),
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                compressed=True,
                serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE,
                                                           parameters=serde_params),
                columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in cols]))
