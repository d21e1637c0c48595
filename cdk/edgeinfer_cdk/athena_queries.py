"""The saved Athena queries a fleet operator starts from: plain strings, no aws_cdk (tests parse them alone).

Athena engine v3 (Trino) SQL over the per-type tables (athena.py): ``<type>_events`` in the fleet's Glue
database, partition column ``day`` (``'YYYY-MM-DD'``, the event's own UTC day). Every query bounds ``day`` so
Athena reads only those days' objects. The device is ``iot_thing``: the thing the topic named, which the IoT
policies bind to the publisher (the event's own ``device`` field is what the device says about itself).
Delivery is at least once, so queries that count collapse repeated event ids first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NamedQuery:
    key: str
    name: str
    description: str
    sql: str  # with {db} for the database


def table(event_type: str) -> str:
    return f"{event_type}_events"


def days_back(n: int) -> str:
    """The ``day`` partition bound for the last ``n`` days (today included)."""
    return f"date_format(current_date - INTERVAL '{n}' DAY, '%Y-%m-%d')"


QUERIES: tuple[NamedQuery, ...] = (
    NamedQuery("detections_per_label", "detections per label per device per day",
               "Detections by label, device and day over the last 7 days, from the summary windows",
               f"""WITH windows AS (
  SELECT id, arbitrary(day) AS day, arbitrary(iot_thing) AS device, arbitrary(labels) AS labels
  FROM "{{db}}"."{table('summary')}"
  WHERE day >= {days_back(7)}
  GROUP BY id
)
SELECT day, device, label, sum(n) AS detections
FROM windows CROSS JOIN UNNEST(labels) AS t (label, n)
GROUP BY day, device, label
ORDER BY day DESC, device, detections DESC"""),
    NamedQuery("degraded_last_hour", "devices degraded in the last hour",
               "Devices that sent a degraded health report in the last hour, with their latest reason and backend",
               f"""SELECT iot_thing AS device,
  count(DISTINCT id) AS degraded_reports,
  max(from_iso8601_timestamp(ts)) AS last_report,
  max_by(reason, from_iso8601_timestamp(ts)) AS backend_reason,
  max_by(run.degraded, from_iso8601_timestamp(ts)) AS degraded_parts,
  max_by(backend.backend, from_iso8601_timestamp(ts)) AS backend,
  max_by(model.version, from_iso8601_timestamp(ts)) AS model_version
FROM "{{db}}"."{table('health')}"
WHERE day >= {days_back(1)}
  AND from_iso8601_timestamp(ts) >= current_timestamp - INTERVAL '1' HOUR
  AND (degraded OR cardinality(run.degraded) > 0)
GROUP BY iot_thing
ORDER BY last_report DESC"""),
    NamedQuery("alerts_by_rule", "alert counts by rule",
               "Alerts per rule and severity over the last 7 days, with how many devices raised them",
               f"""SELECT rule, severity,
  count(DISTINCT id) AS alerts,
  count(DISTINCT iot_thing) AS devices,
  min(ts) AS first_ts,
  max(ts) AS last_ts
FROM "{{db}}"."{table('alert')}"
WHERE day >= {days_back(7)}
GROUP BY rule, severity
ORDER BY alerts DESC"""),
    NamedQuery("model_versions", "model versions running",
               "The model each device ran at its latest health report of the last 2 days, counted by version",
               f"""WITH latest AS (
  SELECT iot_thing AS device,
    max_by(model, from_iso8601_timestamp(ts)) AS model,
    max_by(backend, from_iso8601_timestamp(ts)) AS backend,
    max(from_iso8601_timestamp(ts)) AS last_report
  FROM "{{db}}"."{table('health')}"
  WHERE day >= {days_back(2)}
  GROUP BY iot_thing
)
SELECT model.name AS model, model.version AS version, backend.backend AS backend,
  count(*) AS devices,
  min(last_report) AS oldest_report,
  array_agg(device ORDER BY device) AS device_list
FROM latest
GROUP BY model.name, model.version, backend.backend
ORDER BY devices DESC"""),
)
