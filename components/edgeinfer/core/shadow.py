"""Shadow A/B: a candidate model runs beside the active one on a share of the frames, and its agreement with the
active model is measured on the device, before anyone switches to it.

Detections are matched one to one by label and IoU (greedy, best IoU first); against the active model as the
reference the candidate has a precision (its detections that match), a recall (the active model's that it
finds) and, on matched pairs, a score delta. Classification compares the top class. ``agreement`` is the F1 of
precision and recall over all labels (1.0: the same detections; classification: the share of equal top
classes). This module is the pure part: settings and the arithmetic. ``shadow_runner.py`` runs the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import scope
from .types import Detection, TaskOutput


class ShadowConfig(BaseModel):
    """A candidate model evaluated beside the active one (results are measured, never acted on)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str | None = Field(default=None, description="Candidate model package (folder or .zip); None = no shadow",
                              json_schema_extra=scope.checked("model_path"))
    max_cost: float = Field(default=0.1, ge=0.01, le=1.0,
                            description="CPU budget of the candidate: its inference time at most this share of the "
                            "wall time (0.1: the active model keeps ~90 % of a core's throughput)")
    iou: float = Field(default=0.5, ge=0.05, le=1.0, description="IoU for a candidate detection to match an active one")
    promote_at: float | None = Field(default=None, ge=0.0, le=1.0,
                                     description="Switch to the candidate (through the health gate's probation) once "
                                     "its agreement reaches this after min_frames compared frames; None = never")
    min_frames: int = Field(default=100, ge=1, le=10_000_000,
                            description="Compared frames before promote_at is considered")


@dataclass
class LabelTally:
    active: int = 0
    candidate: int = 0
    matched: int = 0
    score_delta_sum: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "candidate": self.candidate, "matched": self.matched,
                "precision": _ratio(self.matched, self.candidate), "recall": _ratio(self.matched, self.active),
                "score_delta": round(self.score_delta_sum / self.matched, 4) if self.matched else None}


def _ratio(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(active: list[Detection], candidate: list[Detection], min_iou: float) -> list[tuple[Detection, Detection]]:
    """One-to-one pairs (active, candidate) of the same label with IoU >= ``min_iou``, best IoU first."""
    pairs = sorted(((iou(a.box, c.box), i, j) for i, a in enumerate(active) for j, c in enumerate(candidate)
                    if a.label == c.label), reverse=True)
    used_a: set[int] = set()
    used_c: set[int] = set()
    out: list[tuple[Detection, Detection]] = []
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i in used_a or j in used_c:
            continue
        used_a.add(i)
        used_c.add(j)
        out.append((active[i], candidate[j]))
    return out


@dataclass
class Agreement:
    """The candidate against the active model over some frames."""

    frames: int = 0
    labels: dict[str, LabelTally] = field(default_factory=dict)
    classified: int = 0  # classification frames
    top1_equal: int = 0
    candidate_ms: list[float] = field(default_factory=list)

    def add(self, active: TaskOutput, candidate: TaskOutput, iou_min: float, candidate_ms: float) -> None:
        self.frames += 1
        self.candidate_ms.append(candidate_ms)
        if active.classes or candidate.classes:
            a = max(active.classes, key=lambda c: c.score).label if active.classes else None
            c = max(candidate.classes, key=lambda c: c.score).label if candidate.classes else None
            self.classified += 1
            self.top1_equal += a == c
            return
        for d in active.detections:
            self._tally(d.label).active += 1
        for d in candidate.detections:
            self._tally(d.label).candidate += 1
        for a_det, c_det in match(active.detections, candidate.detections, iou_min):
            t = self._tally(a_det.label)
            t.matched += 1
            t.score_delta_sum += c_det.score - a_det.score

    def _tally(self, label: str) -> LabelTally:
        return self.labels.setdefault(label, LabelTally())

    @property
    def agreement(self) -> float | None:
        """F1 of the candidate against the active model (classification: share of equal top classes)."""
        if self.frames == 0:
            return None
        if self.classified:
            return self.top1_equal / self.classified
        matched = sum(t.matched for t in self.labels.values())
        active = sum(t.active for t in self.labels.values())
        candidate = sum(t.candidate for t in self.labels.values())
        if active + candidate == 0:
            return 1.0  # both found nothing, every time
        return 2 * matched / (active + candidate)

    def to_dict(self) -> dict[str, Any]:
        ms = sorted(self.candidate_ms)
        agreement = self.agreement
        return {"frames": self.frames, "agreement": None if agreement is None else round(agreement, 4),
                "labels": {k: t.to_dict() for k, t in sorted(self.labels.items())},
                "candidate_infer_ms_p50": round(ms[len(ms) // 2], 3) if ms else None}
