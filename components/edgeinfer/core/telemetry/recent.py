"""What delivery sees of the outbox in memory: its newest rows, and rows delivered but not yet deleted.

Reading a row back costs a SQLite step that releases and re-takes the GIL, under contention with the
producer and the MQTT client's callbacks; a row the outbox wrote itself is handed to delivery from
here instead. The database stays the truth: a row is copied here only after its transaction
committed, and leaves when it is acknowledged, refused or evicted, or when the copy outgrows its byte
bound (oldest first, lowest priority first).

Invariant, per priority level: every stored, unacknowledged row with ``n >= covered_from(level)``
is here; older rows (from an earlier run, or trimmed) are read from the database.

Acknowledged rows leave the copy at once and wait in ``settled`` until the outbox deletes them, with
its next write or as soon as no append holds the database, so the delivery thread never waits for
the producer's transaction. Thread-safe: one short lock, never held while SQLite runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from itertools import islice

from .record import Record


class RecentRows:
    def __init__(self, levels: Iterable[int], next_n: int, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._rows: dict[int, dict[int, Record]] = {level: {} for level in sorted(levels)}
        self._from = dict.fromkeys(self._rows, next_n)
        self._bytes = 0
        self._settled: list[int] = []

    def covered_from(self, level: int) -> int:
        return self._from[level]

    def add(self, records: Iterable[Record]) -> None:
        """Rows just committed, in ascending ``n``."""
        with self._lock:
            for r in records:
                self._rows[r.priority][r.n] = r
                self._bytes += len(r.payload)
            if self._bytes > self.max_bytes:
                self._trim()

    def discard(self, ns: Sequence[int]) -> None:
        """Rows deleted from the database (absent ones are ignored)."""
        with self._lock:
            self._discard(ns)

    def settle(self, ns: Sequence[int]) -> None:
        """Rows acknowledged: gone from delivery's view now, deleted from the database later."""
        with self._lock:
            self._discard(ns)
            self._settled.extend(ns)

    def take_settled(self) -> list[int]:
        """The acknowledged rows to delete now; ``return_settled`` them if the delete fails."""
        with self._lock:
            ns, self._settled = self._settled, []
        return ns

    def return_settled(self, ns: list[int]) -> None:
        with self._lock:
            self._settled[:0] = ns

    def settled_set(self) -> frozenset[int]:
        """Acknowledged rows not deleted yet (non-empty only while deletes fail)."""
        with self._lock:
            return frozenset(self._settled)

    @property
    def settled_count(self) -> int:
        return len(self._settled)

    def after(self, level: int, n: int, limit: int) -> list[Record] | None:
        """Up to ``limit`` rows of ``level`` above row ``n``, oldest first; None when older rows than
        the copy holds may come first (read those from the database, then ask again)."""
        with self._lock:
            if n + 1 < self._from[level]:
                return None
            return list(islice((r for r in self._rows[level].values() if r.n > n), limit))

    def _discard(self, ns: Sequence[int]) -> None:
        for rows in self._rows.values():
            if not rows:
                continue
            for n in ns:
                r = rows.pop(n, None)
                if r is not None:
                    self._bytes -= len(r.payload)

    def _trim(self) -> None:
        for level, rows in self._rows.items():  # lowest priority first
            while rows and self._bytes > self.max_bytes // 2:  # trim in bulk, not one row per append
                n, r = next(iter(rows.items()))
                del rows[n]
                self._bytes -= len(r.payload)
                self._from[level] = n + 1
            if self._bytes <= self.max_bytes // 2:
                return
