"""What goes into the capture queue: the frame, why, and what the models said about it.

``capture(result, image, reason, ctx)`` encodes the frame as JPEG and queues it with its metadata, within
``max_per_minute`` (frames over it are counted, not kept); ``sampled()`` draws the random sample. Runs on the
sink thread (uncertain, alert, sample) and on the fallback's worker (disagreed).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..fallback.guards import Budget
from ..sinks.base import RunContext
from ..types import FrameResult, TaskOutput
from .config import CapturesConfig
from .queue import CaptureQueue
from .uploader import Uploader

log = logging.getLogger(__name__)


def _dets(output: TaskOutput) -> list[dict[str, Any]]:
    return [{"label": d.label, "score": round(float(d.score), 4), "box": [round(float(v), 1) for v in d.box]}
            for d in output.detections] + [{"label": c.label, "score": round(float(c.score), 4)}
                                           for c in output.classes]


class Capturer:
    def __init__(self, cfg: CapturesConfig, queue: CaptureQueue, uploader: Uploader | None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.cfg, self.queue, self.uploader = cfg, queue, uploader
        self._rng = rng or random.Random()
        self._wall = wall
        self._rate = Budget(cfg.max_per_minute, 1 << 62, clock, wall)
        self._lock = threading.Lock()
        self.captured: dict[str, int] = {}
        self.over_rate = 0

    def sampled(self) -> bool:
        return self.cfg.sample_rate > 0 and self._rng.random() < self.cfg.sample_rate

    def capture(self, result: FrameResult, image: np.ndarray | None, reason: str, ctx: RunContext,
                cloud: TaskOutput | None = None, agreement: float | None = None) -> str | None:
        """Queue the frame; its capture id, or None (no image, over the rate, cannot fit)."""
        if image is None:
            return None
        with self._lock:
            if not self._rate.take():
                self.over_rate += 1
                return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.cfg.jpeg_quality])
        if not ok:
            return None
        meta: dict[str, Any] = {
            "device": ctx.device_id, "time": round(self._wall(), 3), "reason": reason,
            "model": {"name": ctx.model_name, "version": ctx.model_version},
            "frame": {"source": result.source, "index": result.index, "ts": round(result.ts, 3),
                      "width": result.width, "height": result.height,
                      **({"stream": result.stream} if result.stream is not None else {})},
            "task": result.task, "local": _dets(result.output)}
        if cloud is not None:
            meta["cloud"] = _dets(cloud)
        if agreement is not None:
            meta["agreement"] = round(agreement, 4)
        cid = self.queue.add(buf.tobytes(), meta)
        if cid is not None:
            with self._lock:
                self.captured[reason] = self.captured.get(reason, 0) + 1
            if self.uploader is not None:
                self.uploader.wake()
        return cid

    def state(self) -> dict[str, Any]:
        up = self.uploader
        return {"queued": len(self.queue), "bytes": self.queue.size_bytes, "captured": dict(self.captured),
                "evicted": self.queue.evicted, "uploaded": up.uploaded if up else 0,
                "upload_failed": up.failed if up else 0, "last_error": up.last_error if up else None}

    def close(self) -> None:
        if self.uploader is not None:
            self.uploader.close()
