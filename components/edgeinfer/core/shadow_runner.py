"""Runs the shadow candidate (shadow.py) beside the active model, inside a CPU budget.

A sink of the run: each result (the frame and the active model's output) is offered; the candidate takes it
only when its own thread is idle and its budget allows. After an inference that took ``t``, it rests for
``t * (1 / max_cost - 1)``, so its inference time stays within ``max_cost`` of the wall time whatever the
frame rate. Offering never blocks the pipeline. A candidate that fails on a frame is counted and stopped
(its error in the shadow state), never the run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .model import LoadedModel
from .shadow import Agreement, ShadowConfig
from .sinks.base import RunContext
from .streams.tally import crop, fit_output
from .types import FrameResult, TaskOutput

log = logging.getLogger(__name__)


class ShadowRunner:
    def __init__(self, cfg: ShadowConfig, model: LoadedModel, clock: Callable[[], float] = time.monotonic,
                 on_agreement: Callable[[ShadowRunner, int, float | None], None] | None = None) -> None:
        """``on_agreement(runner, frames, agreement)`` after each compared frame (the session's promotion)."""
        self.cfg = cfg
        self.model = model
        self._clock = clock
        self._on_agreement = on_agreement
        self._queue: queue.Queue[tuple[np.ndarray, TaskOutput, tuple[int, int, int, int] | None] | None] = (
            queue.Queue(maxsize=1))
        self._lock = threading.Lock()
        self._total = Agreement()
        self._window = Agreement()
        self._rest_until = 0.0
        self.offered = 0
        self.skipped = 0
        self.error: str | None = None
        self.promoting = False  # set once the session promotes this candidate
        self._thread = threading.Thread(target=self._run, name="edgeinfer-shadow", daemon=True)
        self._thread.start()

    @property
    def version(self) -> str:
        return self.model.package.manifest.version

    def offer(self, result: FrameResult) -> None:
        """From the sink thread: hand the frame over if the candidate is idle and within budget; never waits."""
        self.offered += 1
        if result.image is None or self.error is not None or self._clock() < self._rest_until:
            self.skipped += 1
            return
        try:
            self._queue.put_nowait((result.image, result.output, result.roi))
        except queue.Full:
            self.skipped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._clock() < self._rest_until:  # offered while the last one ran: the rest applies to it too
                self.skipped += 1
                continue
            image, active, roi = item
            try:
                t0 = time.perf_counter()
                tensor, transform = self.model.preprocessor(crop(image, roi))  # what the active model saw
                outputs = self.model.infer(tensor[None])[0]  # one frame: the batch of one the pipeline makes
                candidate = fit_output(self.model.decoder.decode(outputs, transform, self.model.labels), roi, None)
                took = time.perf_counter() - t0
            except Exception as exc:  # the candidate's trouble is measured, never the run's
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("shadow model %s failed on a frame and stopped: %s", self.version, self.error)
                continue
            self._rest_until = self._clock() + took * (1.0 / self.cfg.max_cost - 1.0)
            with self._lock:
                for tally in (self._total, self._window):
                    tally.add(active, candidate, self.cfg.iou, took * 1e3)
                frames, agreement = self._total.frames, self._total.agreement
            if self._on_agreement is not None:
                self._on_agreement(self, frames, agreement)

    def compared(self) -> tuple[int, float | None]:
        """(frames compared, agreement) since the start."""
        with self._lock:
            return self._total.frames, self._total.agreement

    def state(self, window: bool = False) -> dict[str, Any]:
        """The agreement since the start (health), or since the last window and a new window begun (summary)."""
        with self._lock:
            tally = self._window if window else self._total
            if window:
                self._window = Agreement()
            doc = tally.to_dict()
        return {"model_version": self.version, **doc, "offered": self.offered, "skipped": self.skipped,
                "error": self.error}

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            self._queue.get_nowait()
            self._queue.put_nowait(None)
        self._thread.join(10)
        self.model.close()


class ShadowSlot:
    """The run's sink for the shadow: forwards results to the current runner (none most of the time), so the
    candidate can change without the sink list changing."""

    def __init__(self) -> None:
        self.runner: ShadowRunner | None = None

    def start(self, ctx: RunContext) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        runner = self.runner
        if runner is not None:
            runner.offer(result)

    def close(self, summary: dict[str, Any]) -> None:
        pass
