"""The serving side's sink: what the metrics, the health checks and the status page need frame by frame.

* Latency histograms (seconds) of each stage a frame carries in its timings (preprocess, infer, decode, sinks,
  total = capture -> result), counted like the pipeline's own stats: one pipeline's worth, from its first frame
  (a restarted pipeline starts again from zero, which Prometheus' ``rate()`` reads as a counter reset). A frame's
  ``sinks`` and ``total`` are written after every sink has seen it, so each frame is counted when the next one
  arrives, and the last one when the pipeline closes.
* When the last frame was inferred, and when the pipeline started (liveness and readiness).
* Frames and detections per label in short intervals over the chart window (the status page's chart).
* Rule firings and the last alerts, from the telemetry service's listener (attached at every pipeline start:
  a telemetry service is only ever replaced together with the pipeline).

Runs on the pipeline's sink thread: a few dict updates per frame, under one lock the readers share.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..sinks.base import RunContext
from ..types import FrameResult

#: upper bounds (seconds) of the stage-latency buckets: 1 ms .. 10 s
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HISTOGRAM_STAGES = ("preprocess", "infer", "decode", "sinks", "total")
CHART_BIN_S = 10
FPS_WINDOW_S = 10.0
ALERTS_KEPT = 20


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def copy(self) -> Histogram:
        return Histogram(list(self.counts), self.sum, self.count)


@dataclass
class _Bin:
    start: int  # seconds (monotonic clock), a multiple of CHART_BIN_S
    frames: int = 0
    detections: Counter[str] = field(default_factory=Counter)


class Recorder:
    """A Sink (start / on_result / close). ``telemetry`` returns the run's current telemetry service, if any."""

    def __init__(self, chart_window_s: int = 600, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._bins: deque[_Bin] = deque(maxlen=max(1, chart_window_s // CHART_BIN_S))
        self._recent: deque[float] = deque()  # result times within FPS_WINDOW_S
        self._hist: dict[str, Histogram] = {}
        self._pending: dict[str, float] | None = None
        self._alerts: deque[dict[str, Any]] = deque(maxlen=ALERTS_KEPT)
        self._firings: Counter[tuple[str, str]] = Counter()
        self._listening: Any = None
        self.telemetry: Callable[[], Any] = lambda: None
        self.pipeline_started: float | None = None
        self.last_result_at: float | None = None

    # -- sink (the pipeline's sink thread) -------------------------------------------------------
    def start(self, ctx: RunContext) -> None:
        with self._lock:
            self._hist, self._pending = {}, None
            self.pipeline_started = self._clock()
        service = self.telemetry()
        if service is not None and service is not self._listening:
            service.add_listener(self._on_event)
            self._listening = service

    def on_result(self, result: FrameResult) -> None:
        now = self._clock()
        with self._lock:
            if self._pending is not None:
                self._observe(self._pending)
            self._pending = result.timings_ms  # complete (sinks, total) once every sink has seen this frame
            self.last_result_at = now
            self._recent.append(now)
            while self._recent and self._recent[0] < now - FPS_WINDOW_S:
                self._recent.popleft()
            start = int(now // CHART_BIN_S) * CHART_BIN_S
            if not self._bins or self._bins[-1].start != start:
                self._bins.append(_Bin(start))
            b = self._bins[-1]
            b.frames += 1
            for d in result.output.detections:
                b.detections[d.label] += 1

    def close(self, summary: dict[str, Any]) -> None:
        with self._lock:
            if self._pending is not None:
                self._observe(self._pending)
                self._pending = None

    def _observe(self, timings_ms: dict[str, float]) -> None:
        for stage in HISTOGRAM_STAGES:
            ms = timings_ms.get(stage)
            if ms is not None:
                self._hist.setdefault(stage, Histogram()).observe(ms / 1e3)

    # -- telemetry listener (the emitting thread) --------------------------------------------------
    def _on_event(self, event: Any) -> None:
        if getattr(event, "type", None) != "alert":
            return
        ev = event.evidence
        alert = {"at": time.time(), "rule": event.rule, "severity": event.severity, "source": ev.source,
                 "frame": ev.frame, "count": ev.count, "max_score": ev.max_score}
        with self._lock:
            self._firings[(event.rule, event.severity)] += 1
            self._alerts.append(alert)

    # -- readers (request threads) ---------------------------------------------------------------
    def last_telemetry(self) -> Any:
        """The telemetry service of the latest pipeline (closed once the run stopped: counters only)."""
        return self._listening

    def histograms(self) -> dict[str, Histogram]:
        with self._lock:
            return {k: h.copy() for k, h in self._hist.items()}

    def firings(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._firings)

    def alerts(self) -> list[dict[str, Any]]:
        """The last alerts, newest first."""
        with self._lock:
            return list(reversed(self._alerts))

    def fps(self) -> float:
        """Frames per second over the last FPS_WINDOW_S (0 when none came)."""
        now = self._clock()
        with self._lock:
            n = sum(1 for t in self._recent if t >= now - FPS_WINDOW_S)
            first = self.pipeline_started
        span = FPS_WINDOW_S if first is None else min(FPS_WINDOW_S, max(1e-3, now - first))
        return n / span

    def chart(self) -> dict[str, Any]:
        """Frames and detections per label in CHART_BIN_S bins, oldest first, the bins without frames included."""
        now = self._clock()
        with self._lock:
            bins = list(self._bins)
        last = int(now // CHART_BIN_S) * CHART_BIN_S
        n = self._bins.maxlen or 1
        by_start = {b.start: b for b in bins}
        starts = [last - CHART_BIN_S * i for i in range(n - 1, -1, -1)]
        labels = sorted({k for b in bins for k in b.detections})
        return {"bin_s": CHART_BIN_S, "ages_s": [round(now - s, 1) for s in starts],
                "frames": [by_start[s].frames if s in by_start else 0 for s in starts],
                "detections": {lab: [by_start[s].detections.get(lab, 0) if s in by_start else 0 for s in starts]
                               for lab in labels}}
