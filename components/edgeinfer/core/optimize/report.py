"""The agreement report: does the optimised model still say what the original says, and what did it buy?

The original is the reference. Detection: per label, the optimised model's detections are matched one to one
to the original's (same label, IoU >= ``iou``, best first: ``core.shadow.match``, the matcher shadow A/B
uses); precision = matched / optimised detections, recall = matched / original detections, with the mean
IoU and the mean score change (optimised - original) of the matched pairs. Classification: the share of
frames whose top-1 class agrees. Segmentation: the mean over classes of the IoU of their masks, summed over
all frames. Then size and latency p50 of both. ``verdict`` is ``accepted`` when every figure is within the
thresholds, else ``rejected`` (``accepted-below`` when the operator accepted it anyway); ``failures`` says
which figure missed and by how much.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..shadow import iou, match
from ..types import TaskOutput
from .evaluate import ModelRun

Verdict = Literal["accepted", "rejected", "accepted-below"]


class Thresholds(BaseModel):
    """Below these the optimised package is rejected."""

    model_config = ConfigDict(extra="forbid")

    min_precision: float = Field(default=0.95, ge=0, le=1, description="Detection: each label's precision")
    min_recall: float = Field(default=0.95, ge=0, le=1, description="Detection: each label's recall")
    min_mean_iou: float = Field(default=0.85, ge=0, le=1, description="Detection: mean IoU of matched boxes")
    max_score_delta: float = Field(default=0.1, ge=0, le=1,
                                   description="Detection: largest mean |score change| of matched boxes, per label")
    min_top1: float = Field(default=0.95, ge=0, le=1, description="Classification: top-1 agreement")
    min_mask_iou: float = Field(default=0.9, ge=0, le=1, description="Segmentation: mean IoU of the class masks")


class LabelAgreement(BaseModel):
    original: int = 0
    optimized: int = 0
    matched: int = 0
    precision: float | None = None
    recall: float | None = None
    mean_iou: float | None = None
    score_delta: float | None = None


class Side(BaseModel):
    """One model's own figures."""

    file: str
    size_bytes: int
    latency_ms_p50: float | None


class AgreementReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    task: str
    heldout_frames: int
    calibration_frames: int
    iou: float = 0.5
    labels: dict[str, LabelAgreement] = Field(default_factory=dict)
    precision: float | None = None
    recall: float | None = None
    mean_iou: float | None = None
    score_delta: float | None = None
    top1_agreement: float | None = None
    mask_iou: float | None = None
    original: Side
    optimized: Side
    size_ratio: float = Field(description="optimised / original file size")
    speedup: float | None = Field(description="original p50 / optimised p50 on this host (> 1: faster)")
    thresholds: Thresholds
    failures: list[str] = Field(default_factory=list)
    verdict: Verdict

    @property
    def agreement(self) -> float | None:
        """One number for lineage and summaries: the weakest of the figures the task has."""
        figures = [v for v in (self.precision, self.recall, self.top1_agreement, self.mask_iou) if v is not None]
        return min(figures) if figures else None


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def compare(task: str, original: list[TaskOutput], optimized: list[TaskOutput], min_iou: float = 0.5
            ) -> dict[str, object]:
    """The agreement figures of ``optimized`` against ``original`` (frame by frame, same order)."""
    if task == "classification":
        agree = [_top1(a) == _top1(b) for a, b in zip(original, optimized, strict=True)]
        return {"top1_agreement": _r(sum(agree) / len(agree)) if agree else None}
    if task == "segmentation":
        return {"mask_iou": _r(_mask_iou(original, optimized))}
    labels: dict[str, dict[str, float]] = {}

    def tally(label: str) -> dict[str, float]:
        return labels.setdefault(label, {"original": 0, "optimized": 0, "matched": 0, "iou": 0.0, "delta": 0.0})

    for ref, cand in zip(original, optimized, strict=True):
        for d in ref.detections:
            tally(d.label)["original"] += 1
        for d in cand.detections:
            tally(d.label)["optimized"] += 1
        for a, b in match(ref.detections, cand.detections, min_iou):
            t = tally(a.label)
            t["matched"] += 1
            t["iou"] += iou(a.box, b.box)
            t["delta"] += b.score - a.score
    out = {k: _label(t) for k, t in sorted(labels.items())}
    n_ref = sum(int(t["original"]) for t in labels.values())
    n_opt = sum(int(t["optimized"]) for t in labels.values())
    n_match = sum(int(t["matched"]) for t in labels.values())
    return {"labels": out, "precision": _r(n_match / n_opt) if n_opt else None,
            "recall": _r(n_match / n_ref) if n_ref else None,
            "mean_iou": _r(sum(t["iou"] for t in labels.values()) / n_match) if n_match else None,
            "score_delta": _r(sum(t["delta"] for t in labels.values()) / n_match) if n_match else None}


def _label(t: dict[str, float]) -> LabelAgreement:
    m = int(t["matched"])
    return LabelAgreement(original=int(t["original"]), optimized=int(t["optimized"]), matched=m,
                          precision=_r(m / t["optimized"]) if t["optimized"] else None,
                          recall=_r(m / t["original"]) if t["original"] else None,
                          mean_iou=_r(t["iou"] / m) if m else None, score_delta=_r(t["delta"] / m) if m else None)


def _top1(out: TaskOutput) -> str | None:
    return max(out.classes, key=lambda c: c.score).label if out.classes else None


def _mask_iou(original: list[TaskOutput], optimized: list[TaskOutput]) -> float | None:
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    for a, b in zip(original, optimized, strict=True):
        if a.segmentation is None or b.segmentation is None:
            continue
        ma, mb = a.segmentation.mask, b.segmentation.mask
        for k in np.union1d(np.unique(ma), np.unique(mb)).tolist():
            in_a, in_b = ma == k, mb == k
            inter[k] = inter.get(k, 0) + int(np.count_nonzero(in_a & in_b))
            union[k] = union.get(k, 0) + int(np.count_nonzero(in_a | in_b))
    ious = [inter[k] / union[k] for k in union if union[k]]
    return float(np.mean(ious)) if ious else None


def failures(report: AgreementReport) -> list[str]:
    """Each figure that misses its threshold, as a short phrase; a report with nothing to judge fails too."""
    t, out = report.thresholds, []
    if report.task == "detection":
        if not report.labels or all(a.original == 0 for a in report.labels.values()):
            return ["the original model found nothing on the held-out frames, so agreement cannot be judged"]
        for label, a in report.labels.items():
            if a.original and (a.recall or 0.0) < t.min_recall:
                out.append(f"{label}: recall {a.recall or 0.0:.3f} < {t.min_recall}")
            if a.optimized and (a.precision or 0.0) < t.min_precision:
                out.append(f"{label}: precision {a.precision or 0.0:.3f} < {t.min_precision}")
            if a.mean_iou is not None and a.mean_iou < t.min_mean_iou:
                out.append(f"{label}: mean IoU {a.mean_iou:.3f} < {t.min_mean_iou}")
            if a.score_delta is not None and abs(a.score_delta) > t.max_score_delta:
                out.append(f"{label}: score delta {a.score_delta:+.3f} beyond ±{t.max_score_delta}")
    elif report.task == "classification":
        if report.top1_agreement is None or report.top1_agreement < t.min_top1:
            out.append(f"top-1 agreement {report.top1_agreement} < {t.min_top1}")
    elif report.mask_iou is None or report.mask_iou < t.min_mask_iou:
        out.append(f"mask IoU {report.mask_iou} < {t.min_mask_iou}")
    return out


def build_report(*, target: str, task: str, original: ModelRun, optimized: ModelRun, original_side: Side,
                 optimized_side: Side, calibration_frames: int, thresholds: Thresholds, accept_below: bool,
                 min_iou: float = 0.5) -> AgreementReport:
    figures = compare(task, original.outputs, optimized.outputs, min_iou)
    p50_a, p50_b = original_side.latency_ms_p50, optimized_side.latency_ms_p50
    report = AgreementReport.model_validate({
        "target": target, "task": task, "heldout_frames": len(original.outputs), "calibration_frames":
        calibration_frames, "iou": min_iou, **figures, "original": original_side, "optimized": optimized_side,
        "size_ratio": round(optimized_side.size_bytes / max(original_side.size_bytes, 1), 4),
        "speedup": round(p50_a / p50_b, 3) if p50_a and p50_b else None, "thresholds": thresholds,
        "verdict": "accepted"})
    report.failures = failures(report)
    if report.failures:
        report.verdict = "accepted-below" if accept_below else "rejected"
    return report
