"""The delivery thread: outbox -> packer -> transport, with exponential backoff and jitter.

An event leaves the outbox only when the transport reports it acknowledged (or refused for good,
which is logged and counted). Everything else stays and is sent again after a backoff, so
receivers may see an event twice and dedupe by ``id``. In batch mode with ``batch_linger_s`` a
partial batch waits to fill (``linger.py``); alerts and the exit drain never wait.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections import deque
from enum import Enum

from ..errors import TelemetryError
from .config import RetryConfig, TelemetryConfig
from .linger import Linger
from .outbox import Outbox
from .packing import Packed, Packer
from .stats import Stats
from .transport import SendHandle, Transport

log = logging.getLogger(__name__)
PIPELINE_DEPTH = 2  # batches in flight at once


class Outcome(Enum):
    IDLE = "idle"  # nothing to send
    SENT = "sent"  # everything handed over was acknowledged or refused for good
    FAILED = "failed"  # something is still undelivered
    OFFLINE = "offline"
    LINGER = "linger"  # a partial batch waits to fill (batch_linger_s)


def backoff_delay(failures: int, retry: RetryConfig, rng: random.Random) -> float:
    """Delay before attempt ``failures + 1``: exponential, capped, with the jitter taken off the top.

    The growth stops at the cap: ``multiplier ** failures`` overflows a float after ~1000 failed rounds
    (17 h offline at the defaults), which must not end the delivery thread."""
    try:
        grown = retry.initial_s * retry.multiplier ** max(0, failures - 1)
    except OverflowError:
        grown = retry.max_s
    base = min(retry.max_s, grown)
    return base * (1.0 - retry.jitter * rng.random())


class Delivery:
    def __init__(self, outbox: Outbox, transport: Transport, cfg: TelemetryConfig, stats: Stats,
                 rng: random.Random | None = None) -> None:
        self._outbox = outbox
        self._transport = transport
        self._cfg = cfg
        self._stats = stats
        self._packer = Packer(cfg, transport)
        self._linger = Linger(cfg.batch_linger_s if self._packer.batch else 0.0,
                              min(cfg.max_batch_events, cfg.max_inflight))
        self._hold_s = 0.0  # how long the last round decided to let a partial batch fill
        self._draining = False  # nothing lingers while the service drains at exit
        self._rng = rng or random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._inflight: deque[tuple[SendHandle, Packed, dict[int, float]]] = deque()  # + row -> created
        self._cursor: dict[int, int] = {}  # priority -> last row handed out

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgeinfer-telemetry-delivery", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def drain(self, timeout_s: float) -> int:
        """Wait until the outbox is empty or ``timeout_s`` passed; return the events left."""
        deadline = time.monotonic() + timeout_s
        self._draining = True
        self.wake()
        try:
            with self._progress:
                while self._outbox.depth > 0 and self._thread is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._progress.wait(min(remaining, 0.25))
        finally:
            self._draining = False
        return self._outbox.depth

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                outcome = self.attempt()
            except Exception as exc:  # outbox I/O errors, or a bug: must not stop delivery for good
                if isinstance(exc, TelemetryError | sqlite3.Error):
                    log.error("%s", exc)
                else:
                    log.exception("telemetry delivery attempt failed")
                self._inflight.clear()  # unsettled rows stay in the outbox and are sent again
                self._cursor.clear()
                outcome = Outcome.FAILED
            if outcome is Outcome.SENT:
                failures = 0
            elif outcome is Outcome.IDLE:
                failures = 0
                self._wake.wait(1.0)
            elif outcome is Outcome.LINGER:
                self._wake.wait(self._hold_s)  # a new event (an alert, or enough to fill) ends the wait
            elif outcome is Outcome.OFFLINE:
                self._transport.wait_connected(0.25)
            else:
                failures += 1
                delay = backoff_delay(failures, self._cfg.retry, self._rng)
                log.debug("telemetry delivery: retry %d in %.2fs (%s)", failures, delay, self._last_error)
                self._stop.wait(delay)

    def attempt(self) -> Outcome:
        """One round: hand over the next batch, settle the oldest in flight. Public for step-by-step tests.

        Up to ``PIPELINE_DEPTH`` batches are in flight, so the link never idles while acknowledgements
        of the previous batch come back. A batch that is not fully acknowledged settles everything in
        flight and rewinds: the next round starts again from the oldest undelivered row.
        """
        if not self._transport.status().connected:
            self._rewind()
            return Outcome.OFFLINE
        self._wake.clear()
        self._hold_s = 0.0
        handed_over = self._submit_next()
        if self._inflight and (not handed_over or len(self._inflight) >= PIPELINE_DEPTH):
            if self._settle_oldest():
                return Outcome.SENT
            self._rewind()
            return Outcome.FAILED
        if handed_over:
            return Outcome.SENT
        if self._hold_s:
            return Outcome.LINGER
        self._cursor.clear()
        self._outbox.flush()  # delete what was acknowledged while appends held the database
        return Outcome.IDLE

    def _submit_next(self) -> bool:
        records = self._outbox.peek(self._cfg.max_inflight, self._cursor)
        if not records:
            return False
        if not self._draining and (hold := self._linger.wait_s(records, time.time())) > 0:
            self._hold_s = hold
            return False
        cursor = self._cursor
        for r in records:  # ascending row numbers within a priority: the last one is the highest
            cursor[r.priority] = r.n
        packed = self._packer.pack(records)
        for n, reason in packed.too_large:
            log.error("telemetry: dropped %s -> lower the event size or raise telemetry.max_payload_bytes", reason)
            self._stats.add(rejected=self._outbox.reject([n], reason))
        if packed.messages:
            created = {r.n: r.created for r in records}  # for the delivery latency of what is acknowledged
            self._inflight.append((self._transport.submit(packed.messages, self._cfg.send_timeout_s), packed, created))
        return True

    def _settle_oldest(self) -> bool:
        """Book the oldest batch in flight; False when some of it was not delivered."""
        handle, packed, created = self._inflight.popleft()
        result = handle.wait()
        messages, rows = packed.messages, packed.rows
        acked = messages if len(result.acked) == len(messages) else [m for m in messages if m.key in result.acked]
        acked_rows = [n for m in acked for n in rows[m.key]]
        self._outbox.ack(acked_rows)
        now = time.time()  # the outbox stamps ``created`` with the wall clock
        self._stats.delivered([now - created[n] for n in acked_rows if n in created])
        for key, reason in result.rejected.items():
            m = packed.messages[key]
            log.error("telemetry: %s refused %d %s event(s) on %s: %s -> check the broker's policy/limits "
                      "for this topic", self._transport.describe(), m.count, m.event_type, m.topic, reason)
            self._stats.add(rejected=self._outbox.reject(packed.rows[key], reason))
        self._stats.add(sent_bytes=sum(len(m.payload) for m in acked), sent_messages=len(acked),
                        sent_events=sum(m.count for m in acked))
        with self._progress:
            self._progress.notify_all()
        if len(result.acked) + len(result.rejected) < len(packed.messages):
            self._last_error = result.error
            return False
        return True

    def _rewind(self) -> None:
        """Settle whatever is in flight, then start again from the oldest undelivered row."""
        while self._inflight:
            self._settle_oldest()
        self._cursor.clear()
