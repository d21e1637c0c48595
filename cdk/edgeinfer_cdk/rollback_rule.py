"""The rollback topic rule's SQL and metric name: plain strings, no aws_cdk (tests import them alone).

A device whose health gate undoes a model switch sends ONE health event with ``cause = 'rollback'``
(``run.rollback = {from, to, reason, at}``, ``model = {name, version, sha256}``; docs/telemetry-schema.json).
The rule turns it into one datapoint (value 1, unit Count) of the metric ``RolledBack/<model.name>/<from>``
in the fleet's namespace: exactly what ``edgeinfer.cloud.aws.rollbacks.CloudWatchRollbacks`` reads
(``edgeinfer.cloud.rollout.contract.rollback_metric``). Substitution templates are evaluated against the
original payload (not the SELECT's aliases), so the metric name reads the event's own fields.

``from`` is an IoT SQL keyword, so the rolled-back version is read with ``get(run.rollback, 'from')``
rather than the dot path ``run.rollback.from``.
"""

from __future__ import annotations

from edgeinfer.cloud.rollout.contract import ROLLBACK_METRIC_PREFIX

from .topics import TopicLayout

CAUSE = "cause"
ROLLBACK_CAUSE = "rollback"
MODEL_NAME = "model.name"
ROLLED_BACK_FROM = "get(run.rollback, 'from')"  # the health event's run.rollback.from
#: ``rollback_metric(model.name, run.rollback.from)`` as a substitution template.
METRIC_NAME_TEMPLATE = f"{ROLLBACK_METRIC_PREFIX}/${{{MODEL_NAME}}}/${{{ROLLED_BACK_FROM}}}"


def rollback_sql(layout: TopicLayout) -> str:
    """Health events sent at a rollback, with both metric-name fields present (a malformed one is dropped
    rather than counted under a broken name)."""
    return (f"SELECT {MODEL_NAME} AS model_name, {ROLLED_BACK_FROM} AS rolled_back_from, "
            f"topic({layout.level('device')}) AS iot_thing, clientid() AS iot_client_id "
            f"FROM '{layout.rule_filter('health')}' WHERE {CAUSE} = '{ROLLBACK_CAUSE}' "
            f"AND NOT isUndefined({MODEL_NAME}) AND NOT isUndefined({ROLLED_BACK_FROM})")
