"""The EventBridge events this Lambda acts on: a SageMaker model package reaching ``Approved``, and the
schedule that advances the rollout in flight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVED = "Approved"
SCHEDULE_SOURCE, SCHEDULE_DETAIL_TYPE = "aws.events", "Scheduled Event"


class NotForUs(ValueError):
    """The event is not an approval of this fleet's model package group (nothing to do)."""


@dataclass(frozen=True, slots=True)
class Approval:
    group: str
    version: int
    arn: str

    @classmethod
    def parse(cls, event: dict[str, Any], group: str) -> Approval:
        detail = event.get("detail") or {}
        if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
            raise NotForUs(f"not a model package state change ({event.get('source')}, {event.get('detail-type')})")
        if detail.get("ModelPackageGroupName") != group:
            raise NotForUs(f"model package group {detail.get('ModelPackageGroupName')!r} is not {group!r}")
        if detail.get("ModelApprovalStatus") != APPROVED:
            raise NotForUs(f"status {detail.get('ModelApprovalStatus')!r} is not {APPROVED}")
        try:
            version = int(detail["ModelPackageVersion"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NotForUs(f"no usable ModelPackageVersion in {detail!r}") from exc
        return cls(group=group, version=version, arn=str(detail.get("ModelPackageArn", "")))


def is_schedule(event: dict[str, Any]) -> bool:
    """An EventBridge schedule rule's event (what the stack's advance schedule sends)."""
    return event.get("source") == SCHEDULE_SOURCE and event.get("detail-type") == SCHEDULE_DETAIL_TYPE
