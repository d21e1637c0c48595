"""The telemetry sink: FrameResults -> rules (alerts, actions) and result or summary events.

Rules run first on every frame, whatever the mode, so an alert is stored (and its hooks queued)
before anything else about that frame. Then, by mode: ``results`` stores one result event per
frame; ``summary`` feeds the window; ``alerts-only`` stores nothing more. In every mode the sink
counts what per-frame results and raw frames would have cost, for the bandwidth report.

Nothing here raises into the frame path: a full disk drops events with a count (see the emitter),
and anything else that fails is logged (at most once a minute) and counted, and the frames go on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ..rules.actions import ActionRunner
from ..rules.config import AlertAction, CommandAction, LocalTopicAction, WebhookAction
from ..rules.engine import RuleEngine, RuleHit
from ..sinks.base import RunContext
from ..types import FrameResult
from .config import TelemetryConfig
from .emitter import Emitter
from .events import PRIORITY, AlertEvent, ResultEvent, SummaryEvent
from .health import HealthReporter
from .stats import Stats
from .summary import WindowAggregator

log = logging.getLogger(__name__)
MAX_EVIDENCE_ITEMS = 10
ERROR_LOG_INTERVAL_S = 60


def result_fields(r: FrameResult) -> dict[str, Any]:
    """A FrameResult as ResultEvent fields: scores to 3 decimals, boxes to 0.1 px, timings to 0.01 ms."""
    out = r.output
    d: dict[str, Any] = {"stream": r.stream} if r.stream is not None else {}
    d |= {"source": r.source, "frame": r.index, "width": r.width, "height": r.height,
                         "task": r.task, "timings_ms": {k: round(v, 2) for k, v in r.timings_ms.items()}}
    if out.detections:
        d["detections"] = [{"label": x.label, "score": round(float(x.score), 3),
                            "box": [round(float(v), 1) for v in x.box]} for x in out.detections]
    if out.classes:
        d["classes"] = [{"label": x.label, "score": round(float(x.score), 3)} for x in out.classes]
    if out.segmentation is not None:
        d["areas"] = {k: round(float(v), 4) for k, v in out.segmentation.areas.items()}
    return d


class TelemetrySink:
    """Implements the ``Sink`` port (start / on_result / close)."""

    def __init__(self, cfg: TelemetryConfig, emitter: Emitter, rules: RuleEngine, actions: ActionRunner,
                 health: HealthReporter, stats: Stats) -> None:
        self._cfg = cfg
        self._emitter = emitter
        self.rules = rules
        self._actions = actions
        self._health = health
        self._stats = stats
        self._window = WindowAggregator(cfg.window_s)
        self.summary_extra: Callable[[], dict[str, Any]] | None = None  # e.g. the shadow's agreement per window
        self._frames = 0
        self._errors = 0
        self._error_logged = -math.inf

    def start(self, ctx: RunContext) -> None:
        self._emitter.ctx = ctx  # the pipeline's context is the most current (backend actually loaded)
        for event_type in PRIORITY:  # a device id that makes a bad topic fails now, not mid-run
            self._emitter.topic(event_type)

    def on_result(self, result: FrameResult) -> None:
        try:
            self._on_result(result)
        except Exception:  # telemetry must never stop inference: a bug here is logged, not raised
            self._errors += 1
            now = time.monotonic()
            if now - self._error_logged >= ERROR_LOG_INTERVAL_S:
                self._error_logged = now
                log.exception("telemetry sink failed on %s frame %d (%d failures so far; logged at most every %ds)",
                              result.source, result.index, self._errors, ERROR_LOG_INTERVAL_S)

    def _on_result(self, result: FrameResult) -> None:
        for hit in self.rules.evaluate(result):
            self._on_hit(hit)
        event = self._emitter.build(ResultEvent, **result_fields(result))
        size = 0
        if event is not None:
            if self._cfg.mode == "results":
                stored = self._emitter.emit(event)
                size = stored.size if stored is not None else len(event.encode())  # dropped: what it would cost
            else:  # what it would have cost, with the seq it would have had (encoded once, seq 0: one digit)
                size = len(event.encode()) - 1 + len(str(self._frames + 1))
        self._frames += 1
        self._stats.add(frames=1, raw_bytes=result.width * result.height * 3, results_bytes=size)
        if self._cfg.mode == "summary" and (window := self._window.add(result, size)) is not None:
            self._emit_summary(window)

    def close(self, summary: dict[str, Any]) -> None:
        try:
            if self._cfg.mode == "summary" and (window := self._window.flush()) is not None:
                self._emit_summary(window)
            self._health.emit()
        except Exception:  # the run is over and its results are in: a telemetry bug must not fail it
            log.exception("telemetry sink failed closing the run")
        if self._errors:
            summary.setdefault("telemetry_sink_errors", self._errors)

    def _emit_summary(self, fields: dict[str, Any]) -> None:
        if self.summary_extra is not None:
            fields = {**fields, **self.summary_extra()}
        if (event := self._emitter.build(SummaryEvent, **fields)) is not None:
            self._emitter.emit(event)

    def _on_hit(self, hit: RuleHit) -> None:
        rule, r = hit.rule, hit.result
        items = sorted(hit.items, key=lambda i: i.score, reverse=True)[:MAX_EVIDENCE_ITEMS]
        evidence = {
            **({"stream": r.stream} if r.stream is not None else {}),
            "source": r.source, "frame": r.index, "frame_ts": r.ts, "since_ts": hit.since_ts,
            "matched": hit.matched, "considered": hit.considered, "count": len(hit.items),
            "max_score": round(max((i.score for i in hit.items), default=0.0), 3),
            "items": [{"label": i.label, "score": round(i.score, 3),
                       **({"box": [round(v, 1) for v in i.box]} if i.box else {})} for i in items],
        }
        event = self._emitter.build(AlertEvent, rule=rule.name, severity=rule.severity, evidence=evidence)
        if event is None:
            return
        to_cloud = any(isinstance(a, AlertAction) for a in rule.actions)
        local = [a.topic for a in rule.actions if isinstance(a, LocalTopicAction)]
        stored = None
        if to_cloud or local:
            stored = self._emitter.emit(event, local_topics=local, to_default=to_cloud,
                                        stream=None if to_cloud else "local")
        log.info("rule %s fired on %s frame %d (%d matching)", rule.name, r.stream or r.source, r.index,
                 len(hit.items))
        payload = stored.payload if stored is not None else event.encode()  # hooks get the stored bytes
        for action in rule.actions:
            if isinstance(action, CommandAction | WebhookAction):
                self._actions.submit(rule.name, action, payload)
