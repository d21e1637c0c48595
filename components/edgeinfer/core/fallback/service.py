"""The fallback service: frames offered on the frame path, sent from a worker thread, answered as events.

``offer(result, trigger, image)`` runs on the sink thread and never waits: it counts the frame, checks (in this
order) that the device is online, the breaker lets a request through, the worker's queue has room and the
budget allows one, then encodes the JPEG (cropped when asked) and queues it. Whatever stops a frame is counted
under ``skipped`` by reason; the budget is spent only on frames that are queued. The frame's local result has
gone out already (the telemetry sink runs first); the worker's answer follows as its own ``cloud`` event with
the frame's ``frame_source`` and ``frame``, the latency and the cloud/local agreement (core/shadow.py's match).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..redact import redact
from ..shadow import Agreement
from ..types import Detection, FrameResult, TaskOutput
from .band import Box, Trigger, crop_box
from .client import CloudClient, Refused, Unreachable
from .config import FallbackConfig
from .formats import BadAnswer, Codec
from .guards import Budget, CircuitBreaker

log = logging.getLogger(__name__)
SKIP_REASONS = ("offline", "breaker", "busy", "budget", "encode")


@dataclass
class Job:
    result: FrameResult
    trigger: Trigger
    jpeg: bytes
    crop: Box | None
    queued_at: float


@dataclass
class Tally:
    frames: int = 0
    triggered: int = 0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    disagreed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1024))  # the latest answers
    agreement_sum: float = 0.0
    agreements: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


#: (job, the cloud's output in frame pixels or None, its agreement F1 or None) after each answer or failure
AnswerListener = Callable[[Job, TaskOutput | None, float | None], None]


def encode_jpeg(image: np.ndarray, crop: Box | None, quality: int) -> bytes | None:
    part = image[crop[1]:crop[3], crop[0]:crop[2]] if crop is not None else image
    ok, buf = cv2.imencode(".jpg", part, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else None


def _shift(output: TaskOutput, crop: Box | None) -> TaskOutput:
    """Boxes from the sent image's pixels to the frame's."""
    if crop is None:
        return output
    dx, dy = crop[0], crop[1]
    return TaskOutput(detections=[Detection(d.label, d.class_id, d.score,
                                            (d.box[0] + dx, d.box[1] + dy, d.box[2] + dx, d.box[3] + dy))
                                  for d in output.detections], classes=output.classes)


class FallbackService:
    def __init__(self, cfg: FallbackConfig, client: CloudClient, codec: Codec,
                 emit: Callable[[dict[str, Any]], None], online: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        """``emit(fields)``: store a ``cloud`` event with these fields (telemetry); ``online()``: whether the
        device is connected now (its telemetry link)."""
        self.cfg, self.client, self.codec = cfg, client, codec
        self._emit, self._online, self._clock = emit, online, clock
        self.budget = Budget(cfg.per_minute, cfg.per_day, clock, wall)
        self.breaker = CircuitBreaker(cfg.breaker_failures, cfg.breaker_cooldown_s, clock)
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=cfg.queue_size)
        self._lock = threading.Lock()
        self.total, self.window = Tally(), Tally()
        self.listeners: list[AnswerListener] = []
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()  # set while nothing is queued or in flight
        self.idle.set()
        self._in_flight = 0

    # -- the frame path ------------------------------------------------------------------------------
    def count_frame(self) -> None:
        with self._lock:
            self.total.frames += 1
            self.window.frames += 1

    def offer(self, result: FrameResult, trigger: Trigger, image: np.ndarray | None) -> str:
        """Queue the frame for the cloud, or count why not. Returns ``queued`` or the skip reason."""
        with self._lock:
            for t in (self.total, self.window):
                t.triggered += 1
            reason = self._gate()
            if reason is None and image is None:
                reason = "encode"
            if reason is not None:
                for t in (self.total, self.window):
                    t.skip(reason)
                return reason
            self._in_flight += 1
            self.idle.clear()
        crop = crop_box(result, self.cfg)
        jpeg = encode_jpeg(image, crop, self.cfg.jpeg_quality) if image is not None else None
        if jpeg is None:
            self._done()
            with self._lock:
                for t in (self.total, self.window):
                    t.skip("encode")
            return "encode"
        self._queue.put_nowait(Job(result, trigger, jpeg, crop, self._clock()))  # room was checked under the lock
        return "queued"

    def _gate(self) -> str | None:
        if not self._online():
            return "offline"
        if not self.breaker.allow():
            return "breaker"
        if self._in_flight >= self.cfg.queue_size:
            return "busy"
        if not self.budget.take():
            return "budget"
        return None

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.idle.set()

    # -- the worker --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgeinfer-fallback", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the worker: what is queued is dropped (it was counted as sent), the request in flight is let end
        within ``timeout_s``."""
        thread, self._thread = self._thread, None
        if thread is not None:
            while True:
                try:
                    self._queue.get_nowait()
                    self._done()
                except queue.Empty:
                    break
            self._queue.put(None)
            thread.join(timeout_s)
        self.client.close()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._call(job)
            except Exception:  # the worker must outlive any one frame
                log.exception("fallback: frame %s#%d failed", job.result.source, job.result.index)
            finally:
                self._done()

    def _call(self, job: Job) -> None:
        req = self.codec.encode(job.jpeg, job.result.width, job.result.height)
        with self._lock:
            for t in (self.total, self.window):
                t.sent += 1
        started = time.perf_counter()
        error: str | None = None
        output: TaskOutput | None = None
        try:
            reply = self.client.invoke(req.body, req.content_type, req.accept, self.cfg.timeout_s)
            output = _shift(self.codec.decode(reply.body, reply.content_type), job.crop)
        except (Unreachable, Refused, BadAnswer) as exc:
            error = redact(exc.problem)
        latency_ms = (time.perf_counter() - started) * 1000.0
        # no local result to agree with when the local model could not run
        agreement = (self._agreement(job.result.output, output)
                     if output is not None and job.trigger != "unavailable" else None)
        with self._lock:
            self.breaker.record(error is None)
            for t in (self.total, self.window):
                if error is None:
                    t.answered += 1
                    t.latency_ms.append(latency_ms)
                    if agreement is not None:
                        t.agreement_sum += agreement
                        t.agreements += 1
                        t.disagreed += agreement < self.cfg.agree_at
                else:
                    t.failed += 1
            breaker = self.breaker.state
        if error is not None:
            log.info("fallback: %s frame %d: %s (breaker %s)", redact(job.result.source), job.result.index, error,
                     breaker)
        self._emit(self._event(job, output, agreement, latency_ms, error))
        for fn in self.listeners:
            fn(job, output, agreement)

    def _agreement(self, local: TaskOutput, cloud: TaskOutput) -> float | None:
        a = Agreement()
        a.add(cloud, local, self.cfg.iou, 0.0)  # the cloud is the reference: precision = local's that match
        return a.agreement

    def _event(self, job: Job, output: TaskOutput | None, agreement: float | None, latency_ms: float,
               error: str | None) -> dict[str, Any]:
        r = job.result
        fields: dict[str, Any] = {"stream": r.stream, "frame_source": r.source, "frame": r.index,
                                  "frame_ts": round(r.ts, 3),
                                  "endpoint": self.client.name, "trigger": job.trigger, "ok": error is None,
                                  "latency_ms": round(latency_ms, 2), "task": r.task,
                                  "local": {"detections": len(r.output.detections),
                                            "best": round(max((d.score for d in r.output.detections), default=0.0),
                                                          3)}}
        if job.crop is not None:
            fields["crop"] = list(job.crop)
        if error is not None:
            fields["error"] = error
        if output is not None:
            fields["detections"] = [{"label": d.label, "score": round(float(d.score), 3),
                                     "box": [round(float(v), 1) for v in d.box]} for d in output.detections]
            if output.classes:
                fields["classes"] = [{"label": c.label, "score": round(float(c.score), 3)} for c in output.classes]
            if agreement is not None:
                fields["agreement"] = round(agreement, 4)
        return fields

    # -- reporting ---------------------------------------------------------------------------------
    def state(self, window: bool = False) -> dict[str, Any]:
        """The counts since start (or over the summary window, which then starts again), budget left, breaker."""
        with self._lock:
            t = self.window if window else self.total
            if window:
                self.window = Tally()
            ms = sorted(t.latency_ms)
            return {"endpoint": self.client.name, "frames": t.frames, "triggered": t.triggered, "sent": t.sent,
                    "answered": t.answered, "failed": t.failed, "disagreed": t.disagreed, "skipped": dict(t.skipped),
                    "rate": round(t.sent / t.frames, 4) if t.frames else None,
                    "latency_ms_p50": round(ms[len(ms) // 2], 2) if ms else None,
                    "agreement": round(t.agreement_sum / t.agreements, 4) if t.agreements else None,
                    "budget_left": self.budget.left(), "breaker": self.breaker.state,
                    "breaker_opened": self.breaker.opened}
