"""Counters shared by the sink, the delivery thread and health: bytes sent vs what results and raw
frames would have cost, events made per type, invalid events, events the outbox could not store
(``write_failed``: a full or failing disk), actions run, and how long delivered events waited (stored ->
acknowledged, a histogram: ``delivery_latency()``)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: upper bounds (seconds) of the delivery-latency buckets: a link up answers in ms, a device offline for days
DELIVERY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
                      21_600.0, 86_400.0)


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Non-cumulative counts per bucket of ``bounds`` (the last: above every bound), their sum and count."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    frames: int
    raw_bytes: int  # W*H*3 of every frame seen
    results_bytes: int  # what one result event per frame costs (actual in results mode)
    sent_bytes: int  # payload bytes acknowledged by the transport (after gzip)
    sent_messages: int
    sent_events: int
    emitted: dict[str, int]
    invalid: int
    rejected: int
    actions: dict[str, int]
    write_failed: int = 0  # events dropped because the outbox could not store them (disk full, I/O error)
    write_failed_by_type: dict[str, int] = field(default_factory=dict)

    def saving_vs_results(self) -> float | None:
        return None if not self.results_bytes else 1.0 - self.sent_bytes / self.results_bytes

    def saving_vs_raw(self) -> float | None:
        return None if not self.raw_bytes else 1.0 - self.sent_bytes / self.raw_bytes

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["saving_vs_results"] = self.saving_vs_results()
        d["saving_vs_raw"] = self.saving_vs_raw()
        return d


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n: Counter[str] = Counter()
        self._emitted: Counter[str] = Counter()
        self._actions: Counter[str] = Counter()
        self._write_failed: Counter[str] = Counter()
        self._latency = [0] * (len(DELIVERY_BUCKETS_S) + 1)
        self._latency_sum = 0.0

    def add(self, **amounts: int) -> None:
        with self._lock:
            self._n.update(amounts)

    def emitted(self, event_type: str, n: int = 1) -> None:
        with self._lock:
            self._emitted[event_type] += n

    def action(self, name: str) -> None:
        with self._lock:
            self._actions[name] += 1

    def delivered(self, waited_s: list[float]) -> None:
        """Events were acknowledged after waiting these many seconds since they were stored."""
        with self._lock:
            for w in waited_s:
                w = max(0.0, w)  # a wall-clock step back must not make a negative wait
                self._latency[bisect.bisect_left(DELIVERY_BUCKETS_S, w)] += 1
                self._latency_sum += w

    def delivery_latency(self) -> LatencyHistogram:
        with self._lock:
            return LatencyHistogram(DELIVERY_BUCKETS_S, tuple(self._latency), self._latency_sum, sum(self._latency))

    def write_failed(self, by_type: Counter[str]) -> None:
        """Events of these types were dropped: the outbox could not store them."""
        with self._lock:
            self._write_failed.update(by_type)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            n = self._n
            return StatsSnapshot(frames=n["frames"], raw_bytes=n["raw_bytes"], results_bytes=n["results_bytes"],
                                 sent_bytes=n["sent_bytes"], sent_messages=n["sent_messages"],
                                 sent_events=n["sent_events"], emitted=dict(self._emitted), invalid=n["invalid"],
                                 rejected=n["rejected"], actions=dict(self._actions),
                                 write_failed=sum(self._write_failed.values()),
                                 write_failed_by_type=dict(self._write_failed))
