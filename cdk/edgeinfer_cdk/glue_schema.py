"""Athena/Glue column types from the telemetry events' JSON Schema: plain functions, no aws_cdk.

One table per event type (the schema's ``discriminator.mapping``), so a new event type gets its table with no
edit here. Types follow what Athena's OpenX JSON SerDe reads: ``string`` (date-time stays an ISO string; read it
with ``from_iso8601_timestamp(ts)``), ``bigint``, ``double``, ``boolean``, ``array<T>``, ``map<string,T>`` for
objects keyed by data (``additionalProperties``), ``struct<...>`` for objects with named fields. ``X | null`` is
``X`` (every Athena column is nullable). ``anyOf`` of several objects (an alert's evidence items are detections or
classes) is one struct with the union of their fields; anything that cannot be merged is refused, so a schema
change that Athena cannot express fails the synth instead of shipping a table that silently reads NULL.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
SCALARS = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}
#: What the archive topic rule adds to each event (rules.archive_sql), with its Athena type.
RULE_COLUMNS: dict[str, str] = {"iot_thing": "string", "iot_event_type": "string", "iot_client_id": "string",
                                "iot_received_ms": "bigint"}


class SchemaError(ValueError):
    """A part of the event schema that has no Athena column type."""


def event_types(schema: Schema) -> dict[str, Schema]:
    """Event type -> its object schema, from the discriminator (``{"mapping": {"health": "#/$defs/..."}}``)."""
    mapping = schema["discriminator"]["mapping"]
    return {name: _resolve(schema, {"$ref": ref}) for name, ref in sorted(mapping.items())}


def columns(schema: Schema, event_type: str) -> list[tuple[str, str]]:
    """(name, Athena type) of every field of one event type, in the schema's order, then the rule's own fields."""
    obj = event_types(schema)[event_type]
    cols = [(name, hive_type(schema, prop, f"{event_type}.{name}")) for name, prop in obj["properties"].items()]
    clash = sorted(set(RULE_COLUMNS) & {n for n, _ in cols})
    if clash:
        raise SchemaError(f"{event_type}: fields {clash} clash with what the archive rule adds")
    return cols + list(RULE_COLUMNS.items())


def hive_type(root: Schema, node: Schema, where: str) -> str:
    node = _resolve(root, node)
    variants = [_resolve(root, v) for v in node.get("anyOf", node.get("oneOf", []))]
    if variants:
        real = [v for v in variants if v.get("type") != "null"]
        if len(real) == 1:
            return hive_type(root, real[0], where)
        if all(_is_struct(v) for v in real):
            return _struct(root, _merge(real, where), where)
        raise SchemaError(f"{where}: anyOf {[v.get('type') for v in real]} has no single Athena type")
    kind = node.get("type")
    if kind in SCALARS:
        return SCALARS[kind]
    if kind == "array":
        items = node.get("items")
        if items is None and "prefixItems" in node:  # a fixed tuple (a box): one element type for all
            types = {hive_type(root, i, where) for i in node["prefixItems"]}
            if len(types) != 1:
                raise SchemaError(f"{where}: tuple of {sorted(types)} has no single Athena element type")
            return f"array<{types.pop()}>"
        if items is None:
            raise SchemaError(f"{where}: array without items")
        return f"array<{hive_type(root, items, where + '[]')}>"
    if kind == "object":
        if _is_struct(node):
            return _struct(root, node["properties"], where)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return f"map<string,{hive_type(root, extra, where + '{}')}>"
    raise SchemaError(f"{where}: {node!r} has no Athena type")


def _struct(root: Schema, props: dict[str, Schema], where: str) -> str:
    return "struct<" + ",".join(f"{k}:{hive_type(root, v, f'{where}.{k}')}" for k, v in props.items()) + ">"


def _merge(objects: list[Schema], where: str) -> dict[str, Schema]:
    """The union of several objects' fields; a field two objects type differently cannot be merged."""
    out: dict[str, Schema] = {}
    for obj in objects:
        for name, prop in obj["properties"].items():
            if name in out and out[name] != prop:
                raise SchemaError(f"{where}: field {name!r} differs between the anyOf objects")
            out[name] = prop
    return out


def _is_struct(node: Schema) -> bool:
    return node.get("type") == "object" and bool(node.get("properties"))


def _resolve(root: Schema, node: Schema) -> Schema:
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/$defs/"):
        raise SchemaError(f"only local $defs references are supported, got {ref!r}")
    return _resolve(root, root["$defs"][ref.removeprefix("#/$defs/")])
