"""The health gate: a model that has just replaced another is on probation, judged against the model it replaced.

The cloud sees a deployment succeed once a model loads; a model that loads and then finds nothing, or runs
three times slower, or crashes the pipeline, is still "succeeded" there. On the device, during a probation
window after every model switch, the new model's own figures are compared with the previous model's most
recent ones: pipeline failures, inference latency p95, detections per frame and mean score per label. A
breach rolls back to the previous model, which is kept loaded (not reloaded from disk) until the candidate
passes; the session reports ``rolled_back`` with the reason, offline, within the window.

This module is the pure part: settings, the figures of a frame, the verdict. ``session.py`` drives it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .types import FrameResult


class ProbationConfig(BaseModel):
    """After a model switch: how long, on what evidence, and within which bounds the new model must stay."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, description="Judge every model switch; false: a model that loads is kept")
    window_s: float = Field(default=120.0, ge=1.0, le=86_400.0,
                            description="Seconds of the new model's results before it is judged (1 s to 1 day)")
    min_frames: int = Field(default=30, ge=1, le=1_000_000,
                            description="Results the new model needs before it is judged (1 to 10^6)")
    max_wait_s: float = Field(default=3600.0, ge=1.0, le=604_800.0,
                              description="Without min_frames by then (a source that went quiet), the new model is "
                              "kept unjudged and the previous one released (1 s to 7 days)")
    baseline_frames: int = Field(default=300, ge=1, le=100_000,
                                 description="The previous model's most recent results it is compared with")
    max_latency_ratio: float = Field(default=3.0, ge=1.0, le=1000.0,
                                     description="Inference p95 at most this many times the previous model's (on a "
                                     "device whose CPU other work shares, leave room for its load)")
    warmup_results: int = Field(default=5, ge=0, le=10_000,
                                description="The new model's first results are not counted for latency (its caches "
                                "and the allocator are still warming up)")
    min_detection_ratio: float = Field(default=0.25, ge=0.0, le=1.0,
                                       description="Per label seen at least min_label_results times before: "
                                       "detections (or top classes) per frame at least this share of before")
    max_score_drop: float = Field(default=0.25, ge=0.0, le=1.0,
                                  description="Per label: mean score at most this much lower than before")
    min_label_results: int = Field(default=10, ge=1, le=1_000_000,
                                   description="A label is compared only when the previous model produced it at "
                                   "least this often in its baseline")
    max_failures: int = Field(default=2, ge=0, le=100,
                              description="Pipeline failures (crash-restarts) the new model may cause")


@dataclass(frozen=True, slots=True)
class FrameFigures:
    """What one result says about the model that made it."""

    infer_ms: float | None
    labels: tuple[tuple[str, float], ...]  # (label, score) per detection, or the top class

    @classmethod
    def of(cls, result: FrameResult) -> FrameFigures:
        out = result.output
        if out.detections:
            labels = tuple((d.label, float(d.score)) for d in out.detections)
        elif out.classes:
            top = max(out.classes, key=lambda c: c.score)
            labels = ((top.label, float(top.score)),)
        else:
            labels = ()
        return cls(result.timings_ms.get("infer"), labels)


@dataclass(frozen=True, slots=True)
class Figures:
    """A model's figures over some results."""

    frames: int
    infer_p95_ms: float | None
    per_label: dict[str, tuple[int, float]]  # label -> (results, mean score)

    @classmethod
    def over(cls, frames: Iterable[FrameFigures], skip_times: int = 0) -> Figures:
        """``skip_times``: the first results whose latency is left out (a warming-up model)."""
        items = list(frames)
        times = [f.infer_ms for f in items[skip_times:] if f.infer_ms is not None]
        counts: dict[str, int] = {}
        sums: dict[str, float] = {}
        for f in items:
            for label, score in f.labels:
                counts[label] = counts.get(label, 0) + 1
                sums[label] = sums.get(label, 0.0) + score
        return cls(len(items), float(np.percentile(times, 95)) if times else None,
                   {k: (n, sums[k] / n) for k, n in counts.items()})

    def rate(self, label: str) -> float:
        return self.per_label.get(label, (0, 0.0))[0] / self.frames if self.frames else 0.0

    def to_dict(self) -> dict[str, Any]:
        p95 = None if self.infer_p95_ms is None else round(self.infer_p95_ms, 3)
        return {"frames": self.frames, "infer_p95_ms": p95,
                "per_label": {k: {"per_frame": round(n / max(1, self.frames), 4), "mean_score": round(s, 4)}
                              for k, (n, s) in sorted(self.per_label.items())}}


def judge(cfg: ProbationConfig, before: Figures, after: Figures, failures: int) -> str | None:
    """The first bound ``after`` breaches against ``before``, in words; None when it breaches none."""
    if failures > cfg.max_failures:
        return f"{failures} pipeline failures during probation (at most {cfg.max_failures})"
    if before.infer_p95_ms and after.infer_p95_ms is not None \
            and after.infer_p95_ms > cfg.max_latency_ratio * before.infer_p95_ms:
        return (f"inference p95 {after.infer_p95_ms:.1f} ms is {after.infer_p95_ms / before.infer_p95_ms:.1f}x the "
                f"previous model's {before.infer_p95_ms:.1f} ms (at most {cfg.max_latency_ratio:g}x)")
    for label, (n, mean_before) in sorted(before.per_label.items()):
        if n < cfg.min_label_results:
            continue
        was, now = before.rate(label), after.rate(label)
        if now < cfg.min_detection_ratio * was:
            return (f"{label!r}: {now:.2f} per frame against {was:.2f} with the previous model "
                    f"(at least {cfg.min_detection_ratio:g}x)")
        if label in after.per_label and mean_before - after.per_label[label][1] > cfg.max_score_drop:
            return (f"{label!r}: mean score {after.per_label[label][1]:.2f} against {mean_before:.2f} with the "
                    f"previous model (at most {cfg.max_score_drop:g} lower)")
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    reason: str
    before: Figures
    after: Figures


@dataclass
class Probation:
    """One model switch on probation: the previous model's baseline, the candidate's results so far."""

    cfg: ProbationConfig
    before: Figures
    candidate_version: str
    previous_version: str
    clock: Callable[[], float] = time.monotonic
    begun_at: float = field(default=0.0)
    first_result_at: float | None = None
    results: list[FrameFigures] = field(default_factory=list)
    failures: int = 0
    since: str = ""  # UTC ISO time the switch happened, for status

    def __post_init__(self) -> None:
        self.begun_at = self.clock()

    def record(self, figures: FrameFigures) -> Verdict | None:
        now = self.clock()
        if self.first_result_at is None:
            self.first_result_at = now
        self.results.append(figures)
        return self.verdict(now)

    def failed_once(self) -> Verdict | None:
        self.failures += 1
        return self.verdict(self.clock())

    def verdict(self, now: float) -> Verdict | None:
        """None while the evidence is still being gathered."""
        after = Figures.over(self.results, self.cfg.warmup_results) if self.results else Figures(0, None, {})
        if self.failures > self.cfg.max_failures:
            return Verdict(False, judge(self.cfg, self.before, after, self.failures) or "", self.before, after)
        if len(self.results) < self.cfg.min_frames:
            if now - self.begun_at >= self.cfg.max_wait_s:
                return Verdict(True, f"kept unjudged: {len(self.results)} results in {self.cfg.max_wait_s:g} s "
                               f"(probation needs {self.cfg.min_frames})", self.before, after)
            return None
        if self.first_result_at is None or now - self.first_result_at < self.cfg.window_s:
            return None
        if self.before.frames == 0:
            return Verdict(True, "kept: the previous model left no results to compare with", self.before, after)
        reason = judge(self.cfg, self.before, after, self.failures)
        return Verdict(reason is None, reason or f"passed after {len(self.results)} results", self.before, after)

    def state(self) -> dict[str, Any]:
        return {"model_version": self.candidate_version, "previous_version": self.previous_version,
                "since": self.since, "results": len(self.results), "needs": self.cfg.min_frames,
                "window_s": self.cfg.window_s, "failures": self.failures}


class Baseline:
    """The active model's most recent results (what a candidate is compared with)."""

    def __init__(self, size: int) -> None:
        self._recent: deque[FrameFigures] = deque(maxlen=size)

    def add(self, figures: FrameFigures) -> None:
        self._recent.append(figures)

    def resize(self, size: int) -> None:
        if size != self._recent.maxlen:
            self._recent = deque(self._recent, maxlen=size)

    def figures(self) -> Figures:
        return Figures.over(list(self._recent))

    def replace(self, frames: Iterable[FrameFigures]) -> None:
        self._recent = deque(frames, maxlen=self._recent.maxlen)
