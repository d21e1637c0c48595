"""Batch linger: how long a partial batch waits to fill before delivery sends it.

Live traffic comes a few events at a time, so without a wait most batches hold one event and every
event is a billed message. With ``batch_linger_s`` > 0 a read that would not fill a batch waits
until its oldest event has waited that long (measured from when it was stored, so a backlog left
by an earlier run goes at once), or until enough events arrived to fill one. Alerts never wait:
a read that holds an alert is sent at once, with whatever waited alongside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .events import PRIORITY
from .record import Record

ALERT = PRIORITY["alert"]


class Linger:
    def __init__(self, linger_s: float, batch_events: int) -> None:
        self.linger_s = linger_s
        self.batch_events = batch_events

    def wait_s(self, records: Sequence[Record], now: float) -> float:
        """Seconds to hold ``records`` (read in delivery order, alerts first) before sending; 0 = now."""
        if self.linger_s <= 0 or not records or records[0].priority >= ALERT or len(records) >= self.batch_events:
            return 0.0
        oldest = min(r.created for r in records)
        return min(self.linger_s, max(0.0, oldest + self.linger_s - now))  # a clock step never holds longer
