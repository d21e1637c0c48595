"""One ring's progress as both clouds report it, and the verdict on it (pure: no cloud calls, no clock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from .plan import Health

State = Literal["pending", "deploying", "soaking", "passed", "failing", "aborted"]


@dataclass
class RingProgress:
    """Counts for one ring, read from the cloud's aggregates (never device by device).

    ``succeeded`` runs the new version; ``rolled_back`` took it and its health gate went back (a
    deployment success the device undid); ``failed`` is failed + rejected + timed out."""

    ring: str
    deployed: bool = False
    deployment: str | None = None
    started_at: dt.datetime | None = None
    targeted: int = 0
    succeeded: int = 0
    failed: int = 0
    rolled_back: int = 0
    in_progress: int = 0
    stopped_by_cloud: str | None = None  # the service stopped the ring (e.g. an IoT job's abortConfig tripped)
    aborted: str | None = None  # edgeinfer aborted the ring, and why (kept in the cloud with the deployment)
    reasons: dict[str, int] = field(default_factory=dict)  # failure/rollback reason -> devices, when known
    calls: int = 0  # API calls this reading took

    @property
    def reported(self) -> int:
        return self.succeeded + self.failed + self.rolled_back

    def as_dict(self) -> dict[str, Any]:
        return {"ring": self.ring, "deployment": self.deployment, "targeted": self.targeted,
                "succeeded": self.succeeded, "failed": self.failed, "rolled_back": self.rolled_back,
                "in_progress": self.in_progress, "aborted": self.aborted, "reasons": dict(self.reasons),
                "started_at": self.started_at.isoformat() if self.started_at else None}


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def judge(p: RingProgress, health: Health, soak_s: float, now: dt.datetime) -> tuple[State, str]:
    """(state, why) of a ring: where it stands against the plan's health criteria and soak time."""
    if p.aborted:
        return "aborted", p.aborted
    if not p.deployed:
        return "pending", "not deployed yet"
    if p.reported >= health.min_reported:
        failed, rolled = _pct(p.failed, p.reported), _pct(p.rolled_back, p.reported)
        if failed > health.max_failed_pct:
            return "failing", (f"{p.failed}/{p.reported} devices failed the deployment ({failed:.0f}% > "
                               f"{health.max_failed_pct:g}%)")
        if rolled > health.max_rolled_back_pct:
            return "failing", (f"{p.rolled_back}/{p.reported} devices rolled the model back ({rolled:.0f}% > "
                               f"{health.max_rolled_back_pct:g}%)")
    if p.stopped_by_cloud:
        return "failing", p.stopped_by_cloud
    if p.targeted == 0:
        return "deploying", "no devices in the ring yet"
    if p.reported < health.min_reported or _pct(p.reported, p.targeted) < health.min_reported_pct:
        return "deploying", f"{p.reported}/{p.targeted} devices reported"
    left = soak_s - ((now - p.started_at).total_seconds() if p.started_at else 0.0)
    if left > 0:
        return "soaking", f"healthy so far; {left:.0f} s of soak left"
    return "passed", f"healthy after {soak_s:g} s soak"
