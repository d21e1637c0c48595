"""The durable outbox: SQLite in WAL mode, at-least-once, ordered per stream, bounded by bytes.

* An event enters in one transaction with the next ``seq`` of its stream, so sequence numbers are
  gap-free and survive restarts: a crash before the commit loses the event *and* its number.
* ``fsync=normal`` (``PRAGMA synchronous=NORMAL``): a committed event survives kill -9; a power
  cut may lose what was committed since the kernel last wrote the WAL back (Linux: within ~30 s),
  at most all since the last checkpoint. The database stays consistent and seq rolls back too.
  ``fsync=full`` syncs the WAL on every commit: nothing committed is lost even on power loss.
* Bounded by bytes (payload + topic + a per-row estimate). When full, the oldest events of the
  lowest priority go first: results, then health, then summaries, alerts last; an event that
  only lower-or-equal priority rows could make room for and still does not fit is dropped itself.
  Evictions are counted per type, persisted, and reported in health.
* Delivery reads highest priority first, oldest first within a priority: per stream, in seq order.
* One process at a time: an exclusive lock file next to the database (released by the OS on kill).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TelemetryError
from .events import PRIORITY, EventBase
from .lockfile import take_lock

log = logging.getLogger(__name__)

ROW_OVERHEAD = 64
EVICTION_LOG_INTERVAL_S = 60
LEVELS = sorted(set(PRIORITY.values()))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events(
  n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, type TEXT NOT NULL, seq INTEGER NOT NULL,
  priority INTEGER NOT NULL, topic TEXT NOT NULL, model_version TEXT NOT NULL, created REAL NOT NULL,
  size INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_priority ON events(priority, n);
CREATE TABLE IF NOT EXISTS seq(stream TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_UPSERT = "INSERT INTO {t}({k}, {v}) VALUES(?, ?) ON CONFLICT({k}) DO UPDATE SET {v}=excluded.{v}"


@dataclass(frozen=True, slots=True)
class Pending:
    """An event to store, once per topic (a local-topic copy is a second row), in ``stream``'s order."""

    event: EventBase
    topics: tuple[str, ...]
    stream: str | None = None  # sequence stream; None = the event type


@dataclass(frozen=True, slots=True)
class Stored:
    event: EventBase  # with its seq
    size: int  # payload bytes of one copy


@dataclass(slots=True)
class AppendResult:
    stored: list[Stored] = field(default_factory=list)
    rejected: list[tuple[EventBase, str]] = field(default_factory=list)
    evicted: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Record:
    n: int
    priority: int
    id: str
    type: str
    seq: int
    topic: str
    model_version: str
    created: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    evicted: dict[str, int]
    rejected: int


class Outbox:
    def __init__(self, path: Path, max_bytes: int, max_event_bytes: int, fsync: str = "normal",
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._evict_logged = -math.inf
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lockfile = take_lock(path.with_name(path.name + ".lock"))
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync == 'full' else 'NORMAL'}")
            self._db.execute("PRAGMA mmap_size=67108864")  # reads of a large backlog skip the page-cache copy
            self._db.execute("PRAGMA cache_size=-8192")  # 8 MiB
            self._db.executescript(_SCHEMA)
            q = self._db.execute
            self._depth, self._bytes = q("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
            self._seq: dict[str, int] = dict(q("SELECT stream, last FROM seq").fetchall())
            self._counters: Counter[str] = Counter(dict(q("SELECT name, value FROM counters").fetchall()))
        except sqlite3.Error as exc:
            self._lockfile.close()
            raise TelemetryError(f"cannot open the telemetry outbox {path}: {exc}",
                                 "check the state dir is writable, or move the damaged file away") from exc
        log.debug("outbox %s: %d events, %d bytes", path, self._depth, self._bytes)

    # -- writing ---------------------------------------------------------------------------------
    def append(self, items: Sequence[Pending]) -> AppendResult:
        """Store events in one transaction (one commit for the whole batch)."""
        out = AppendResult()
        with self._lock:
            seqs, depth, size_total = dict(self._seq), self._depth, self._bytes
            rows: list[tuple[object, ...]] = []
            now = self._clock()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for item in items:
                    stream = item.stream or item.event.type
                    seq = seqs.get(stream, 0) + 1
                    event = item.event
                    event.seq = seq  # stamped in place: the outbox owns the event from here on
                    payload = event.encode()
                    if len(payload) > self.max_event_bytes:
                        out.rejected.append((event, f"{event.type} event {event.id} is {len(payload)} bytes, over "
                                             f"the {self.max_event_bytes}-byte message limit"))
                        continue
                    for topic in item.topics:
                        row_size = len(payload) + len(topic) + ROW_OVERHEAD
                        if size_total + row_size > self.max_bytes:
                            self._insert(rows)  # rows before this one may be the ones to go
                            freed, d_freed = self._make_room(size_total + row_size - self.max_bytes,
                                                             event.priority, out.evicted)
                            size_total -= freed
                            depth -= d_freed
                            if size_total + row_size > self.max_bytes:
                                out.evicted[event.type] += 1
                                continue
                        rows.append((event.id, event.type, seq, event.priority, topic, event.model_version, now,
                                     row_size, payload))
                        size_total += row_size
                        depth += 1
                    seqs[stream] = seq
                    out.stored.append(Stored(event, len(payload)))
                self._insert(rows)
                for stream in {i.stream or i.event.type for i in items}:
                    if stream in seqs:
                        self._db.execute(_UPSERT.format(t="seq", k="stream", v="last"), (stream, seqs[stream]))
                changed = Counter({f"evicted.{k}": v for k, v in out.evicted.items()})
                changed["rejected"] = len(out.rejected)
                counters = self._counters + changed
                for key in +changed:
                    self._db.execute(_UPSERT.format(t="counters", k="name", v="value"), (key, counters[key]))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TelemetryError(f"cannot write to the telemetry outbox {self.path}: {exc}",
                                     "check free disk space and permissions of the state dir") from exc
            self._seq, self._depth, self._bytes, self._counters = seqs, depth, size_total, counters
        if out.evicted and self._clock() - self._evict_logged >= EVICTION_LOG_INTERVAL_S:
            self._evict_logged = self._clock()
            log.warning("telemetry outbox full (%d bytes): evicting oldest, lowest priority first; evicted so "
                        "far %s (logged at most every %ds)", self.max_bytes, self.stats().evicted,
                        EVICTION_LOG_INTERVAL_S)
        return out

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        """Write buffered rows (one executemany) and empty the buffer. Caller holds the lock."""
        if rows:
            self._db.executemany(
                "INSERT INTO events(id, type, seq, priority, topic, model_version, created, size, payload)"
                " VALUES(?,?,?,?,?,?,?,?,?)", rows)
            rows.clear()

    def _make_room(self, need: int, priority: int, evicted: Counter[str]) -> tuple[int, int]:
        """Delete the oldest rows of priority <= ``priority`` until ``need`` bytes are free."""
        freed = rows_deleted = 0
        for level in (p for p in LEVELS if p <= priority):
            while freed < need:
                rows = self._db.execute("SELECT n, size, type FROM events WHERE priority=? ORDER BY n LIMIT 256",
                                        (level,)).fetchall()
                if not rows:
                    break
                victims, pending = [], freed
                for n, size, typ in rows:
                    victims.append(n)
                    pending += size
                    evicted[typ] += 1
                    if pending >= need:
                        break
                deleted, size = self._delete(victims)
                rows_deleted += deleted
                freed += size
        return freed, rows_deleted

    def _delete(self, ns: Sequence[int]) -> tuple[int, int]:
        """Delete rows; returns (rows, bytes) actually deleted. Caller holds the lock."""
        rows = size = 0
        for i in range(0, len(ns), 500):
            chunk = ns[i:i + 500]
            marks = ",".join("?" * len(chunk))
            sizes = self._db.execute(f"DELETE FROM events WHERE n IN ({marks}) RETURNING size", chunk).fetchall()
            rows += len(sizes)
            size += sum(s for (s,) in sizes)
        return rows, size

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    # -- delivery --------------------------------------------------------------------------------
    def peek(self, limit: int, after: Mapping[int, int] | None = None) -> list[Record]:
        """Up to ``limit`` undelivered rows: highest priority first, oldest first within one.

        ``after`` (priority -> row number) skips rows already handed out, for pipelined delivery.
        """
        out: list[Record] = []
        after = after or {}
        with self._lock:
            for level in reversed(LEVELS):
                rows = self._db.execute(
                    "SELECT n, priority, id, type, seq, topic, model_version, created, payload FROM events "
                    "WHERE priority=? AND n>? ORDER BY n LIMIT ?", (level, after.get(level, 0), limit - len(out))
                ).fetchall()
                out.extend(Record(*r) for r in rows)
                if len(out) >= limit:
                    break
        return out

    def ack(self, ns: Iterable[int]) -> int:
        """Delivered: delete. Returns how many rows were still there (an evicted row is not)."""
        return self._remove(list(ns), None)

    def reject(self, ns: Iterable[int], reason: str) -> int:
        """Refused for good (by the peer, or too large): delete and count."""
        return self._remove(list(ns), reason)

    def _remove(self, ns: list[int], reason: str | None) -> int:
        if not ns:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                rows, size = self._delete(ns)
                if reason is not None:
                    self._counters["rejected"] += rows
                    self._db.execute(_UPSERT.format(t="counters", k="name", v="value"),
                                     ("rejected", self._counters["rejected"]))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise TelemetryError(f"cannot update the telemetry outbox {self.path}: {exc}",
                                     "check free disk space and permissions of the state dir") from exc
            self._depth -= rows
            self._bytes -= size
        return rows

    # -- state -----------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    def last_seq(self, stream: str) -> int:
        with self._lock:
            return self._seq.get(stream, 0)

    def stats(self) -> OutboxStats:
        with self._lock:
            row = self._db.execute("SELECT created FROM events ORDER BY n LIMIT 1").fetchone()
            evicted = {k.split(".", 1)[1]: v for k, v in self._counters.items() if k.startswith("evicted.")}
            return OutboxStats(depth=self._depth, bytes=self._bytes,
                               oldest_age_s=None if row is None else round(max(0.0, self._clock() - row[0]), 3),
                               evicted=evicted, rejected=self._counters["rejected"])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # pragma: no cover - best effort
                log.debug("outbox checkpoint failed: %s", exc)
            self._db.close()
            self._lockfile.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
