"""The device -> cloud rollback contract (docs/rollouts.md), one shape on both clouds.

A device whose health gate undoes a model switch reports::

    "rollback": {"from": "<version rolled back>", "to": "<version running now>", "reason": "...",
                 "at": "<ISO 8601 UTC>"}

in its health telemetry events under ``run.rollback`` (Greengrass: the health event JSON; the one sent at the
rollback itself carries ``cause: "rollback"``, which the CDK stack's topic rule turns into one datapoint of the
CloudWatch metric below) and under ``rollback`` in the IoT Edge module's reported properties.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROLLBACK_METRIC_PREFIX = "RolledBack"


class Rollback(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    from_version: str = Field(alias="from", min_length=1)
    to_version: str = Field(alias="to", min_length=1)
    reason: str = ""
    at: dt.datetime

    @classmethod
    def read(cls, doc: Any) -> Rollback | None:
        """The ``rollback`` object of a health event or reported properties; None when absent or malformed."""
        if not isinstance(doc, dict):
            return None
        run = doc.get("run")
        raw = doc.get("rollback") or (run.get("rollback") if isinstance(run, dict) else None)
        try:
            return cls.model_validate(raw) if isinstance(raw, dict) else None
        except ValidationError:
            return None


def rollback_metric(model: str, version: str) -> str:
    """CloudWatch metric name counting devices that rolled ``model`` ``version`` back (one datapoint each)."""
    return f"{ROLLBACK_METRIC_PREFIX}/{model}/{version}"
