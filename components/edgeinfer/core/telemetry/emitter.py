"""Events in: validate, stamp with the run's identity, route to topics, store in the outbox.

An invalid event (NaN score, wrong type) or one over the message limit is logged as one clear
line, counted, and dropped; the events around it flow on. With transport ``none`` there is no
outbox: events are still made (rules, listeners and byte counts work) and then discarded.

An outbox that cannot store (disk full, I/O error, read-only file system) never raises into the
frame path: the events are dropped and counted (``WriteFailures``), telemetry reports itself
degraded until a write succeeds again, and listeners still see the events, with ``seq`` 0 (not
stored), so a local alert is never lost to a full disk.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from ..config import one_line
from ..errors import TelemetryError
from ..sinks.base import RunContext
from .config import TelemetryConfig
from .degraded import WriteFailures
from .events import EventBase
from .limits import render_topic
from .outbox import Outbox, Pending, Stored
from .stats import Stats

log = logging.getLogger(__name__)
E = TypeVar("E", bound=EventBase)
Listener = Callable[[EventBase], None]


class Emitter:
    def __init__(self, cfg: TelemetryConfig, ctx: RunContext, outbox: Outbox | None, stats: Stats,
                 wake: Callable[[], None] = lambda: None, failures: WriteFailures | None = None) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self._outbox = outbox
        self._stats = stats
        self._wake = wake
        self.failures = failures or WriteFailures(stats)
        self._listeners: list[Listener] = []
        self._seq: dict[str, int] = {}  # only without an outbox
        self._seq_lock = threading.Lock()
        self._topics: dict[tuple[str, str, str, str], str] = {}

    def add_listener(self, fn: Listener) -> None:
        """``fn(event)`` after each event is stored (durably, when there is an outbox), and for each event
        the outbox could not store (disk full): those carry ``seq`` 0."""
        self._listeners.append(fn)

    def topic(self, event_type: str) -> str:
        key = (event_type, self.ctx.device_id, self.ctx.model_name, self.ctx.component)
        if (topic := self._topics.get(key)) is None:
            topic = self._topics[key] = render_topic(self.cfg.topic, device=key[1], type=event_type, model=key[2],
                                                     component=key[3])
        return topic

    def build(self, cls: type[E], **fields: Any) -> E | None:
        """Validate an event; None (logged, counted as invalid) when it does not validate."""
        data = {"device": self.ctx.device_id, "model_version": self.ctx.model_version, **fields}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = TelemetryError(f"dropped an invalid {cls.model_fields['type'].default} event: {one_line(exc)}",
                                 "fix the producer of these values; the other events are unaffected")
            log.error("%s", err)
            self._stats.add(invalid=1)
            return None

    def emit(self, event: EventBase, local_topics: Sequence[str] = (), to_default: bool = True,
             stream: str | None = None) -> Stored | None:
        topics = ((self.topic(event.type),) if to_default else ()) + tuple(local_topics)
        stored = self.emit_many([Pending(event, topics, stream)])
        return stored[0] if stored else None

    def emit_many(self, items: Sequence[Pending]) -> list[Stored]:
        if self._outbox is None:
            stored = []
            for item in items:
                stream = item.stream or item.event.type
                with self._seq_lock:
                    self._seq[stream] = seq = self._seq.get(stream, 0) + 1
                event = item.event.with_seq(seq)
                stored.append(Stored(event, event.encode()))
        else:
            try:
                result = self._outbox.append(items)
            except (TelemetryError, sqlite3.Error, OSError) as exc:
                self._dropped(items, exc)
                return []
            self.failures.ok()
            for _event, reason in result.rejected:
                log.error("%s", TelemetryError(f"dropped {reason}", "send less per event (fewer detections, "
                                               "shorter labels) or use summary mode"))
            self._stats.add(rejected=len(result.rejected))
            stored = result.stored
            if stored:
                self._wake()
        for s in stored:
            self._stats.emitted(s.event.type)
            for fn in self._listeners:
                fn(s.event)
        return stored

    def _dropped(self, items: Sequence[Pending], exc: BaseException) -> None:
        """The outbox refused the whole transaction (it rolled back): nothing of it was stored."""
        for item in items:
            item.event.stamp_seq(0)  # the outbox stamped a number it then rolled back
        self.failures.failed((item.event.type for item in items), exc)
        for item in items:
            for fn in self._listeners:
                fn(item.event)
