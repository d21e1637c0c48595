"""The archive, queryable: Glue tables checked against docs/telemetry-schema.json with a Hive type reader of
their own (not the generator's code), the projection against the Firehose prefix of the same synth, the tables
through Glue's API model (moto), the saved queries parsed as Trino SQL with every column resolved against the
table they read, and the workgroup's results location."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from .cfn import Synth
from .conftest import ROOT, require_cdk

require_cdk()

SCHEMA = json.loads((ROOT / "docs" / "telemetry-schema.json").read_text())
RULE_FIELDS = {"iot_thing": "string", "iot_event_type": "string", "iot_client_id": "string",
               "iot_received_ms": "bigint"}
BUCKET = "<Storage/Telemetry>"


# -- an independent reader of Hive type strings -------------------------------------------------------------
def parse_hive(text: str) -> Any:
    """``struct<a:int,b:array<string>>`` -> ("struct", {"a": "int", "b": ("array", "string")}); strict."""
    pos = 0

    def ident() -> str:
        nonlocal pos
        m = re.compile(r"[a-z_][a-z0-9_]*").match(text, pos)
        assert m, f"name expected at {pos}: {text[pos:pos + 30]!r}"
        pos = m.end()
        return m.group(0)

    def expect(ch: str) -> None:
        nonlocal pos
        assert text[pos:pos + 1] == ch, f"{ch!r} expected at {pos}: {text[pos:pos + 30]!r}"
        pos += 1

    def one() -> Any:
        nonlocal pos
        name = ident()
        if name == "array":
            expect("<")
            inner = one()
            expect(">")
            return ("array", inner)
        if name == "map":
            expect("<")
            key = one()
            expect(",")
            value = one()
            expect(">")
            return ("map", key, value)
        if name == "struct":
            expect("<")
            fields: dict[str, Any] = {}
            while True:
                field = ident()
                expect(":")
                assert field not in fields, field
                fields[field] = one()
                if text[pos:pos + 1] == ">":
                    pos += 1
                    return ("struct", fields)
                expect(",")
        assert name in ("string", "bigint", "double", "boolean"), name
        return name

    out = one()
    assert pos == len(text), f"trailing {text[pos:]!r}"
    return out


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def agrees(node: dict[str, Any], hive: Any, where: str) -> None:
    """The JSON Schema ``node`` is read by Athena as ``hive`` (nullable everywhere)."""
    node = _deref(node)
    if "anyOf" in node:
        for variant in node["anyOf"]:
            if variant.get("type") != "null":
                agrees(variant, hive, where)  # every variant fits (one struct takes detections and classes)
        return
    kind = node.get("type")
    scalar = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}
    if kind in scalar:
        assert hive == scalar[kind], (where, kind, hive)
    elif kind == "array":
        assert hive[0] == "array", (where, hive)
        for item in [node["items"]] if "items" in node else node["prefixItems"]:
            agrees(item, hive[1], where + "[]")
    elif kind == "object" and node.get("properties"):
        assert hive[0] == "struct", (where, hive)
        for name, prop in node["properties"].items():
            assert name in hive[1], f"{where}.{name} has no struct field"
            agrees(prop, hive[1][name], f"{where}.{name}")
    elif kind == "object":
        assert hive[0] == "map" and hive[1] == "string", (where, hive)
        agrees(node["additionalProperties"], hive[2], where + "{}")
    else:
        pytest.fail(f"{where}: schema node {node} not understood")


# -- the synthesised tables ---------------------------------------------------------------------------------
def _tables(synth: Synth) -> dict[str, dict[str, Any]]:
    return {synth.props(p)["TableInput"]["Name"]: synth.props(p) for p in synth.of_type("AWS::Glue::Table")}


def test_one_table_per_event_type_the_archive_rule_lets_through(synth: Synth) -> None:
    from edgeinfer_cdk.topics import EVENT_TYPES

    sql = synth.props("Rules/ArchiveRule")["TopicRulePayload"]["Sql"]
    archived = sorted(re.findall(r"topic\(3\) = '(\w+)'", sql))
    assert archived == sorted(EVENT_TYPES) == sorted(SCHEMA["discriminator"]["mapping"])
    assert sorted(_tables(synth)) == [f"{t}_events" for t in archived]
    [db] = synth.of_type("AWS::Glue::Database")
    assert synth.props(db)["DatabaseInput"]["Name"] == "edgeinfer_telemetry"
    for props in _tables(synth).values():
        assert props["DatabaseName"] == "edgeinfer_telemetry" and props["CatalogId"] == "ACCOUNT"


def test_every_schema_field_has_a_column_of_the_right_type(synth: Synth) -> None:
    tables = _tables(synth)
    for event_type, ref in SCHEMA["discriminator"]["mapping"].items():
        obj = _deref({"$ref": ref})
        sd = tables[f"{event_type}_events"]["TableInput"]["StorageDescriptor"]
        cols = {c["Name"]: c["Type"] for c in sd["Columns"]}
        assert sorted(cols) == sorted([*obj["properties"], *RULE_FIELDS]), event_type
        for name, prop in obj["properties"].items():
            agrees(prop, parse_hive(cols[name]), f"{event_type}.{name}")
        for name, hive in RULE_FIELDS.items():
            assert cols[name] == hive


def test_the_checker_can_fail() -> None:
    health = _deref({"$ref": "#/$defs/HealthEvent"})["properties"]
    with pytest.raises(AssertionError):
        agrees(health["model"], parse_hive("struct<name:string,version:string>"), "model")  # sha256 missing
    with pytest.raises(AssertionError):
        agrees(health["outbox"], parse_hive("struct<bytes:bigint,depth:double,evicted:map<string,bigint>,"
                                            "oldest_age_s:double,rejected:bigint>"), "outbox")  # depth is integer
    with pytest.raises(AssertionError):
        parse_hive("struct<a:string")


def test_the_projection_is_the_archives_key_layout(synth: Synth) -> None:
    """storage.location.template is the Firehose prefix of the same synth with the type fixed and the day
    projected in the format of the partition key JQ writes (the first 10 characters of the event's ts)."""
    s3 = synth.props("Archive/Stream")["ExtendedS3DestinationConfiguration"]
    prefix, query = s3["Prefix"], {p["Type"]: {q["ParameterName"]: q["ParameterValue"] for q in p["Parameters"]}
                                   for p in s3["ProcessingConfiguration"]["Processors"]}["MetadataExtraction"]
    keys = re.findall(r"!\{partitionKeyFromQuery:(\w+)\}", prefix)
    assert keys == ["type", "date"]
    assert query["MetadataExtractionQuery"] == '{type: .iot_event_type, date: ((.ts // "") | .[0:10])}'
    for name, props in _tables(synth).items():
        event_type = name.removesuffix("_events")
        params = props["TableInput"]["Parameters"]
        want = prefix.replace("!{partitionKeyFromQuery:type}", event_type).replace(
            "!{partitionKeyFromQuery:date}", "${day}")
        assert params["storage.location.template"] == f"s3://{BUCKET}/{want}"
        assert props["TableInput"]["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/telemetry/type={event_type}/"
        assert props["TableInput"]["PartitionKeys"] == [
            {"Name": "day", "Type": "string", "Comment": "the event's UTC day, YYYY-MM-DD (projected)"}]
        assert {k: v for k, v in params.items() if k.startswith("projection.")} == {
            "projection.enabled": "true", "projection.day.type": "date", "projection.day.format": "yyyy-MM-dd",
            "projection.day.range": "NOW-365DAYS,NOW+1DAYS", "projection.day.interval": "1",
            "projection.day.interval.unit": "DAYS"}
        sd = props["TableInput"]["StorageDescriptor"]
        assert sd["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
        assert sd["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    # what JQ's .ts[0:10] gives for a ts the core writes is a day in the projection's format
    from edgeinfer.core.telemetry.events import HealthEvent

    ts = json.loads(HealthEvent.model_validate({
        "device": "cam-1", "model_version": "1", "model": {"name": "m", "version": "1", "sha256": "0" * 64},
        "backend": {"backend": "onnxruntime", "device": "cpu", "precision": "fp32"}}).encode())["ts"]
    assert dt.datetime.strptime(ts[0:10], "%Y-%m-%d").date() == dt.datetime.now(dt.timezone.utc).date()


def _glue_api(node: Any) -> Any:
    """A synthesised TableInput in Glue's API shape (references made concrete)."""
    if isinstance(node, dict):
        return {k: _glue_api(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_glue_api(v) for v in node]
    return node.replace(f"<{BUCKET[1:-1]}>", "telemetry-bucket") if isinstance(node, str) else node


def test_tables_and_queries_are_accepted_by_the_glue_and_athena_api_models(synth: Synth) -> None:
    """Glue tables through moto's Glue (botocore validates each request); the workgroup and named queries, which
    moto's Athena does not take, through botocore's own parameter validation of the Athena API model."""
    pytest.importorskip("moto", reason="moto (dev extra) stands in for Glue")
    import boto3
    from botocore.validate import validate_parameters
    from moto import mock_aws

    with mock_aws():
        glue = boto3.client("glue", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
        glue.create_database(DatabaseInput={"Name": "edgeinfer_telemetry"})
        for name, props in _tables(synth).items():
            glue.create_table(DatabaseName="edgeinfer_telemetry", TableInput=_glue_api(props["TableInput"]))
            got = glue.get_table(DatabaseName="edgeinfer_telemetry", Name=name)["Table"]
            assert got["StorageDescriptor"]["Columns"] == props["TableInput"]["StorageDescriptor"]["Columns"]
    model = boto3.session.Session().client("athena", region_name="eu-west-1").meta.service_model
    wg = _glue_api(synth.props("Queries/WorkGroup"))
    validate_parameters({"Name": wg["Name"], "Description": wg["Description"],
                         "Configuration": wg["WorkGroupConfiguration"]},
                        model.operation_model("CreateWorkGroup").input_shape)
    for path in synth.of_type("AWS::Athena::NamedQuery"):
        q = synth.props(path)
        validate_parameters({"Name": q["Name"], "Database": q["Database"], "QueryString": q["QueryString"],
                             "Description": q["Description"], "WorkGroup": "edgeinfer-telemetry"},
                            model.operation_model("CreateNamedQuery").input_shape)


def test_workgroup_writes_encrypted_results_to_the_telemetry_bucket_and_they_expire(synth: Synth) -> None:
    wg = synth.props("Queries/WorkGroup")
    assert wg["Name"] == "edgeinfer-telemetry"
    cfg = wg["WorkGroupConfiguration"]
    assert cfg["ResultConfiguration"] == {"OutputLocation": f"s3://{BUCKET}/athena-results/",
                                          "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}
    assert cfg["EnforceWorkGroupConfiguration"] is True and cfg["PublishCloudWatchMetricsEnabled"] is True
    assert cfg["BytesScannedCutoffPerQuery"] == 100 * 1024**3
    assert cfg["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    rules = {r["Id"]: r for r in synth.props("Storage/Telemetry")["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-athena-results"] == {"Id": "expire-athena-results", "Prefix": "athena-results/",
                                              "ExpirationInDays": 30, "Status": "Enabled"}


# -- the saved queries ----------------------------------------------------------------------------------------
def _columns(synth: Synth) -> dict[str, dict[str, Any]]:
    out = {}
    for name, props in _tables(synth).items():
        cols = {c["Name"]: parse_hive(c["Type"]) for c in props["TableInput"]["StorageDescriptor"]["Columns"]}
        cols["day"] = "string"
        out[name] = cols
    return out


def test_saved_queries_parse_and_read_only_columns_the_tables_have(synth: Synth) -> None:
    sqlglot = pytest.importorskip("sqlglot", reason="sqlglot (dev extra) parses the saved queries")
    from sqlglot import exp

    tables = _columns(synth)
    queries = {synth.props(p)["Name"]: synth.props(p) for p in synth.of_type("AWS::Athena::NamedQuery")}
    assert sorted(queries) == sorted(f"edgeinfer: {n}" for n in (
        "detections per label per device per day", "devices degraded in the last hour", "alert counts by rule",
        "model versions running"))
    for name, q in queries.items():
        assert q["Database"] == "edgeinfer_telemetry" and q["WorkGroup"] == "<Queries/WorkGroup>"
        tree = sqlglot.parse_one(q["QueryString"], read="trino")
        read = [t for t in tree.find_all(exp.Table) if t.db]
        assert read and all(t.db == "edgeinfer_telemetry" for t in read), name
        cols = {}
        for t in read:
            cols.update(tables[t.name])
        aliases = {a.alias for a in tree.find_all(exp.Alias)} | {
            c.name for ta in tree.find_all(exp.TableAlias) for c in ta.columns}
        day_bounded = False
        for col in tree.find_all(exp.Column):
            parts = [p.name for p in col.parts]
            if parts[0] in aliases and parts[0] not in cols:
                continue
            root = parts[0]
            assert root in cols, f"{name}: {'.'.join(parts)} is no column of {[t.name for t in read]}"
            node = cols[root]
            for field in parts[1:]:
                assert isinstance(node, tuple) and node[0] == "struct" and field in node[1], \
                    f"{name}: {'.'.join(parts)} has no field {field}"
                node = node[1][field]
            day_bounded |= root == "day"
        assert day_bounded, f"{name} reads every day of the archive"
