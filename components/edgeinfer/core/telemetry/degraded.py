"""Telemetry's own degraded state: the outbox cannot store events (disk full, I/O error, read-only).

Events that cannot be stored are dropped and counted per type (``Stats.write_failed``); inference
never sees the error. The state is degraded from the first failed write until the next write that
succeeds, which clears it by itself when space returns. One warning when it starts, one line when
it ends, and a reminder at most every ``REMIND_S`` while it lasts: a full disk never floods the log.
``on_change`` is called on both transitions (health uses it to report at once).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import EdgeInferError
from .stats import Stats

log = logging.getLogger(__name__)
REMIND_S = 60.0


@dataclass(frozen=True, slots=True)
class DegradedState:
    degraded: bool
    reason: str | None  # while degraded: why, one line
    since: float | None  # wall-clock time the current outage began
    last_error: str | None  # the latest failure, kept after recovery


def write_failure_reason(exc: BaseException) -> str:
    """One line for health and logs: ``outbox write failed: database or disk is full``."""
    cause: BaseException = exc
    if isinstance(exc, EdgeInferError) and isinstance(exc.__cause__, sqlite3.Error | OSError):
        cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        text = cause.strerror
    elif isinstance(cause, EdgeInferError):
        text = cause.problem
    else:
        text = str(cause) or type(cause).__name__
    return "outbox write failed: " + " ".join(text.split())


class WriteFailures:
    def __init__(self, stats: Stats, where: str = "the state dir", clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._stats = stats
        self._where = where
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._since: float | None = None
        self._last_error: str | None = None
        self._outage_dropped = 0
        self._reminded = 0.0
        self.on_change: Callable[[bool], None] | None = None

    def failed(self, event_types: Iterable[str], exc: BaseException) -> None:
        """The outbox refused these events: count them as dropped and enter (or stay in) degraded."""
        by_type = Counter(event_types)
        self._stats.write_failed(by_type)
        reason = write_failure_reason(exc)
        with self._lock:
            began = self._reason is None
            self._reason = self._last_error = reason
            self._outage_dropped += sum(by_type.values())
            now = self._monotonic()
            if began:
                self._since, self._reminded = self._clock(), now
            remind = not began and now - self._reminded >= REMIND_S
            if remind:
                self._reminded = now
            dropped = self._outage_dropped
        if began:
            log.warning("telemetry degraded: %s; events are dropped and counted, inference goes on -> free space "
                        "or fix %s; storing resumes by itself", reason, self._where)
        elif remind:
            log.warning("telemetry still degraded: %s (%d events dropped so far)", reason, dropped)
        if began and self.on_change is not None:
            self.on_change(True)

    def ok(self) -> None:
        """A write succeeded: leave degraded if we were (cheap when healthy)."""
        if self._reason is None:
            return
        with self._lock:
            if self._reason is None:
                return
            reason, dropped, since = self._reason, self._outage_dropped, self._since
            self._reason, self._since, self._outage_dropped = None, None, 0
        took = self._clock() - since if since is not None else 0.0
        log.warning("telemetry recovered: the outbox stores events again (%d dropped in %.0f s: %s)",
                    dropped, took, reason)
        if self.on_change is not None:
            self.on_change(False)

    def reason(self) -> str | None:
        return self._reason

    def state(self) -> DegradedState:
        with self._lock:
            return DegradedState(self._reason is not None, self._reason, self._since, self._last_error)
