"""Per-stream accounting on the pipeline's result stage: frames, bad frames, detections, latency, the latest
result (for snapshots), and the region / threshold applied to each frame's output."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np

from ..stats import StageStats
from ..types import FrameResult, TaskOutput


def crop(image: np.ndarray, roi: tuple[int, int, int, int] | None) -> np.ndarray:
    """The region of interest of ``image`` (a view, no copy); the image itself without one."""
    return image if roi is None else image[roi[1]:roi[1] + roi[3], roi[0]:roi[0] + roi[2]]


def fit_output(output: TaskOutput, roi: tuple[int, int, int, int] | None, min_score: float | None) -> TaskOutput:
    """A stream's region and score threshold applied: boxes moved from the region into whole-frame pixels, and
    what scores below the stream's own threshold dropped (the model ran at the lowest threshold of all streams)."""
    if roi is not None and (roi[0] or roi[1]):
        dx, dy = float(roi[0]), float(roi[1])
        for d in output.detections:
            x1, y1, x2, y2 = d.box
            d.box = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
            if d.keypoints:
                d.keypoints = [(x + dx, y + dy) for x, y in d.keypoints]
    if min_score is not None:
        floor = min_score
        output = replace(output, detections=[d for d in output.detections if d.score >= floor],
                         classes=[c for c in output.classes if c.score >= floor])
    return output


class StreamTally:
    """Thread-safe: the result stage adds, the control surface reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: dict[str, int] = {}
        self._bad: dict[str, int] = {}
        self._detections: dict[str, dict[str, int]] = {}
        self._latency: dict[str, StageStats] = {}
        self._latest: dict[str, tuple[FrameResult, np.ndarray]] = {}

    def add(self, result: FrameResult, image: np.ndarray) -> None:
        sid = result.stream
        if sid is None:
            return
        with self._lock:
            self._frames[sid] = self._frames.get(sid, 0) + 1
            labels = self._detections.setdefault(sid, {})
            for d in result.output.detections:
                labels[d.label] = labels.get(d.label, 0) + 1
            stats = self._latency.get(sid)
            if stats is None:
                stats = self._latency[sid] = StageStats(capacity=2000)
            self._latest[sid] = (result, image)
        if "total" in result.timings_ms:
            stats.add("total", result.timings_ms["total"])

    def bad_frame(self, sid: str | None) -> None:
        if sid is not None:
            with self._lock:
                self._bad[sid] = self._bad.get(sid, 0) + 1

    def latest(self, sid: str) -> tuple[FrameResult, np.ndarray] | None:
        with self._lock:
            return self._latest.get(sid)

    def frames(self, sid: str) -> int:
        with self._lock:
            return self._frames.get(sid, 0)

    def summary(self, states: dict[str, dict[str, Any]], wall_s: float) -> dict[str, dict[str, Any]]:
        """Per stream (in ``states``' order, the streams that run now): its state and counters with what the
        pipeline made of its frames."""
        out: dict[str, dict[str, Any]] = {}
        for sid, st in states.items():
            with self._lock:
                frames, bad = self._frames.get(sid, 0), self._bad.get(sid, 0)
                detections = dict(sorted(self._detections.get(sid, {}).items()))
                stats = self._latency.get(sid)
            lat = stats.percentiles((50, 95)).get("total") if stats is not None else None
            out[sid] = {**st, "frames": frames, "bad": st["bad"] + bad, "fps": round(frames / max(wall_s, 1e-9), 2),
                        "detections": detections,
                        "latency_ms": {"p50": lat["p50"], "p95": lat["p95"]} if lat else None}
        return out
