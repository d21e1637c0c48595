"""How many devices rolled a model version back, from the CloudWatch metric the CDK stack's rollback rule
feeds (one datapoint of 1 per health event carrying ``rollback``; see ``cloud/rollout/contract.py``).

One ``GetMetricStatistics`` call per ring and time window, however large the ring. CloudWatch counts by the
minute, so rings' windows meet on minute boundaries (``minute_after``): a rollback in the minute the next
ring started belongs to the earlier ring, and none is counted twice."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Protocol

from ..rollout.contract import rollback_metric


def minute_after(t: dt.datetime) -> dt.datetime:
    """The first whole minute after ``t`` (``t`` itself when whole)."""
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + dt.timedelta(minutes=1)


def minute_of(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


class RollbackCounter(Protocol):
    def count(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> int: ...


@dataclass(frozen=True)
class CloudWatchRollbacks:
    cloudwatch: Any
    namespace: str = "edgeinfer/edgeinfer"  # the CDK stack's metric_namespace: edgeinfer/<fleet>

    def count(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> int:
        """Rollbacks of ``model`` ``version`` at ``since`` <= time < ``until`` (both whole minutes)."""
        minutes = max(1.0, (until - since).total_seconds() / 60)
        period = 60 * max(1, math.ceil(minutes / 1440))  # at most 1,440 datapoints per call
        got = self.cloudwatch.get_metric_statistics(
            Namespace=self.namespace, MetricName=rollback_metric(model, version), StartTime=since,
            EndTime=until, Period=period, Statistics=["Sum"], Unit="Count")
        return int(sum(p.get("Sum", 0) for p in got.get("Datapoints", [])))
