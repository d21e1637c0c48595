"""Summary windows: frames, detections per label, score histogram, per-stage latency percentiles,
fps and dropped frames, plus what per-frame results and raw frames would have cost in bytes.

Windows run on frame time: a window opens at its first frame and closes when a frame arrives
``window_s`` or more later (that frame opens the next one); ``flush`` closes the open window at
the end of a run. A source that stops sending frames produces no summaries (health still flows).
A frame from before the window's start by more than ``window_s`` (the wall clock stepped back)
closes the window too, so a backward clock step never holds summaries back for longer than a window.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import FrameResult

HIST_BINS = 10


@dataclass(slots=True)
class _Window:
    start: float
    last: float
    frames: int = 0
    dropped: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    hist: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, dtype=np.int64))
    timings: dict[str, list[float]] = field(default_factory=dict)
    results_bytes: int = 0
    raw_bytes: int = 0
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)  # per stream id: frames, dropped, labels


class WindowAggregator:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._win: _Window | None = None
        self._last_index: dict[str, int] = {}

    def add(self, result: FrameResult, results_bytes: int) -> dict[str, Any] | None:
        """Count one frame; returns the finished window's fields when this frame closed one."""
        done = None
        if self._win is not None and abs(result.ts - self._win.start) >= self.window_s:
            done = self.flush()
        w = self._win = self._win or _Window(start=result.ts, last=result.ts)
        w.last = max(w.last, result.ts)
        w.frames += 1
        key = result.stream if result.stream is not None else result.source
        prev = self._last_index.get(key)
        gap = result.index - prev - 1 if prev is not None and result.index > prev + 1 else 0
        w.dropped += gap
        self._last_index[key] = result.index
        out = result.output
        scores = [float(d.score) for d in out.detections]
        labels = [d.label for d in out.detections]
        if out.classes:
            top = max(out.classes, key=lambda c: c.score)
            labels.append(top.label)
            scores.append(float(top.score))
        w.labels.update(labels)
        if result.stream is not None:
            per = w.streams.setdefault(result.stream, {"frames": 0, "dropped": 0, "labels": Counter()})
            per["frames"] += 1
            per["dropped"] += gap
            per["labels"].update(labels)
        finite = [min(max(s, 0.0), 1.0) for s in scores if math.isfinite(s)]
        if finite:
            w.hist += np.histogram(finite, bins=HIST_BINS, range=(0.0, 1.0))[0]
        for stage, ms in result.timings_ms.items():
            if math.isfinite(ms):
                w.timings.setdefault(stage, []).append(ms)
        w.results_bytes += results_bytes
        w.raw_bytes += result.width * result.height * 3
        return done

    def flush(self) -> dict[str, Any] | None:
        """Close the open window; its fields, or None when no frame arrived since the last one."""
        w, self._win = self._win, None
        if w is None or w.frames == 0:
            return None
        span = w.last - w.start
        return {
            "start": round(w.start, 3),
            "end": round(w.last, 3),
            "frames": w.frames,
            "dropped": w.dropped,
            "fps": round((w.frames - 1) / span, 2) if span > 0 else 0.0,
            "labels": dict(w.labels),
            "hist": [int(x) for x in w.hist],
            "latency_ms": {stage: _percentiles(v) for stage, v in w.timings.items()},
            "results_bytes": w.results_bytes,
            "raw_bytes": w.raw_bytes,
            **({"streams": {sid: {**per, "labels": dict(per["labels"])} for sid, per in w.streams.items()}}
               if w.streams else {}),
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}
