"""While the local model cannot run, a live source's frames still reach the cloud fallback.

The run session restarts a pipeline that failed (a runtime error in inference: a device lost, a driver reset)
after a backoff. During that wait the camera still delivers frames and nothing looks at them. ``Bridge.run``
spends the wait reading the live source's newest frames and hands each to ``offer`` (the hybrid slot's
``offer_unavailable``), which counts it and, within the fallback's budget, queues it for the cloud with the
trigger ``unavailable``. ``offer`` never waits (core/fallback/service.py), so reading keeps pace with the
camera; the request runs on the fallback's worker thread.

The bridge ends when the backoff is over or ``cancel()`` is called (the session stops or retires the run); it
never closes the source, which the next pipeline reads from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..redact import redact
from ..sources import Source
from ..types import Frame

log = logging.getLogger(__name__)


class Bridge:
    def __init__(self, source: Source, offer: Callable[[Frame], bool]) -> None:
        """``offer(frame)``: True when the frame was queued for the cloud."""
        self.source, self._offer = source, offer
        self._cancel = threading.Event()
        self.frames = 0
        self.queued = 0

    def cancel(self) -> None:
        """End ``run`` now (safe from any thread)."""
        self._cancel.set()

    def run(self, seconds: float) -> None:
        """Offer the source's frames for ``seconds`` (or until cancelled)."""
        timer = threading.Timer(seconds, self._cancel.set)
        timer.daemon = True
        timer.start()
        try:
            for frame in self.source.iterate(self._cancel):
                self.frames += 1
                self.queued += self._offer(frame)
        except Exception:  # a source error here must not kill the supervisor; the next pipeline meets it again
            log.exception("fallback bridge: reading %s failed", redact(self.source.uri))
        finally:
            timer.cancel()
        if self.frames:
            log.info("fallback bridge: %d frame(s) of %s while the local model could not run, %d sent to the cloud",
                     self.frames, redact(self.source.uri), self.queued)
