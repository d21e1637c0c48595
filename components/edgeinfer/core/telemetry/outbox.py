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
  Rows this process wrote are handed to delivery from memory (``RecentRows``); older ones are read.
* Acknowledged rows leave delivery's view at once and are deleted by the next transaction, or at once
  when no append holds the database: the delivery thread never waits for the producer. A crash in
  between sends them again (at-least-once). Deletes take two statements, whatever the count.
* A full or failing disk: an append that cannot commit rolls back whole and raises ``TelemetryError``
  (the emitter drops and counts it; nothing committed before is touched). Deleting delivered rows
  never raises: on failure they stay out of delivery's view and are deleted by a later write.
* One process at a time: an exclusive lock file next to the database (released by the OS on kill).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from ..errors import TelemetryError
from ..paths import private_file
from .events import PRIORITY
from .lockfile import take_lock
from .recent import RecentRows
from .record import COLUMNS, AppendResult, OutboxStats, Pending, Record, Stored

log = logging.getLogger(__name__)

ROW_OVERHEAD = 64
RECENT_MAX_BYTES = 8 * 1024 * 1024  # rows kept in memory for delivery
EVICTION_LOG_INTERVAL_S = 60
DELETE_LOG_INTERVAL_S = 60
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
_SET_SEQ = _UPSERT.format(t="seq", k="stream", v="last")
_SET_COUNTER = _UPSERT.format(t="counters", k="name", v="value")
_IN_LIST = "n IN (SELECT value FROM json_each(?))"  # one parameter, however many rows
_IN_RANGE = "n BETWEEN ? AND ?"
INSERT_CHUNK = 500  # rows per INSERT statement (10 parameters each; SQLite allows 32766)
_ROW_MARKS = "(" + ",".join("?" * len(Record._fields)) + ")"


class Outbox:
    def __init__(self, path: Path, max_bytes: int, max_event_bytes: int, fsync: str = "normal",
                 clock: Callable[[], float] = time.time, memory_bytes: int = RECENT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._evict_logged = -math.inf
        self._delete_logged = -math.inf
        self._insert_sql: dict[int, str] = {}  # multi-row INSERT text per row count
        path.parent.mkdir(parents=True, exist_ok=True)
        for f in (path.with_name(path.name + ".lock"), path, path.with_name(path.name + "-wal"),
                  path.with_name(path.name + "-shm")):
            # 0600 whatever the umask (events name devices, hosts, labels); SQLite gives its -wal and -shm
            # files the database's mode. Best effort: a full or read-only disk fails clearly just below.
            if not f.name.endswith(("-wal", "-shm")) or f.exists():
                with contextlib.suppress(OSError):
                    private_file(f)
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
            last_n = q("SELECT MAX(COALESCE((SELECT MAX(n) FROM events), 0), COALESCE((SELECT seq FROM "
                       "sqlite_sequence WHERE name='events'), 0))").fetchone()[0]
            self._counters: Counter[str] = Counter(dict(q("SELECT name, value FROM counters").fetchall()))
        except sqlite3.Error as exc:
            self._lockfile.close()
            raise TelemetryError(f"cannot open the telemetry outbox {path}: {exc}",
                                 "check the state dir is writable, or move the damaged file away") from exc
        self._next_n = last_n + 1
        self._recent = RecentRows(LEVELS, self._next_n, min(max_bytes, memory_bytes))
        log.debug("outbox %s: %d events, %d bytes", path, self._depth, self._bytes)

    # -- writing ---------------------------------------------------------------------------------
    def append(self, items: Sequence[Pending]) -> AppendResult:
        """Store events in one transaction (one commit for the whole batch)."""
        out = AppendResult()
        with self._lock:
            seqs, n = dict(self._seq), self._next_n
            rows: list[Record] = []  # to insert
            new: list[Record] = []  # inserted
            gone: list[int] = []  # rows evicted by this transaction
            settled: list[int] = []  # delivered rows deleted by this transaction
            now = self._clock()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                deleted, freed = self._purge_settled(settled)
                depth, size_total = self._depth - deleted, self._bytes - freed
                for item in items:
                    event = item.event
                    stream = item.stream or event.type
                    seq = seqs.get(stream, 0) + 1
                    event.stamp_seq(seq)  # in place: the outbox owns the event from here on
                    payload = event.encode()
                    size = len(payload)
                    if size > self.max_event_bytes:
                        out.rejected.append((event, f"{event.type} event {event.id} is {size} bytes, over "
                                             f"the {self.max_event_bytes}-byte message limit"))
                        continue
                    fields = (event.priority, event.id, event.type, seq)
                    for topic in item.topics:
                        row_size = size + len(topic) + ROW_OVERHEAD
                        if size_total + row_size > self.max_bytes:
                            new += self._insert(rows)  # rows before this one may be the ones to go
                            deleted, freed = self._purge_settled(settled)  # delivered rows are not evictions
                            depth, size_total = depth - deleted, size_total - freed
                            if size_total + row_size > self.max_bytes:
                                freed, victims = self._make_room(size_total + row_size - self.max_bytes,
                                                                 event.priority, out.evicted)
                                size_total -= freed
                                depth -= len(victims)
                                gone.extend(victims)
                            if size_total + row_size > self.max_bytes:
                                out.evicted[event.type] += 1
                                continue
                        rows.append(Record._make((n, *fields, topic, event.model_version, now, payload, row_size)))
                        n += 1
                        size_total += row_size
                        depth += 1
                    seqs[stream] = seq
                    out.stored.append(Stored(event, payload))
                new += self._insert(rows)
                for stream, last in seqs.items():  # the streams this transaction moved on
                    if last != self._seq.get(stream):
                        self._db.execute(_SET_SEQ, (stream, last))
                counters = self._counters
                if out.evicted or out.rejected:
                    changed = Counter({f"evicted.{k}": v for k, v in out.evicted.items()})
                    changed["rejected"] = len(out.rejected)
                    counters = counters + changed
                    for key in +changed:
                        self._db.execute(_SET_COUNTER, (key, counters[key]))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self._recent.return_settled(settled)
                raise TelemetryError(f"cannot write to the telemetry outbox {self.path}: {exc}",
                                     "check free disk space and permissions of the state dir") from exc
            self._seq, self._depth, self._bytes, self._counters = seqs, depth, size_total, counters
            self._next_n = n
            if gone:
                self._recent.discard(gone)
                evicted_now = set(gone)
                new = [r for r in new if r.n not in evicted_now]
            self._recent.add(new)
        if out.evicted and self._clock() - self._evict_logged >= EVICTION_LOG_INTERVAL_S:
            self._evict_logged = self._clock()
            log.warning("telemetry outbox full (%d bytes): evicting oldest, lowest priority first; evicted so "
                        "far %s (logged at most every %ds)", self.max_bytes, self.stats().evicted,
                        EVICTION_LOG_INTERVAL_S)
        return out

    def _insert(self, rows: list[Record]) -> list[Record]:
        """Write buffered rows and empty the buffer; returns them. Caller holds the lock, in a transaction.

        One multi-row INSERT per chunk, not ``executemany``: SQLite releases and re-takes the GIL once
        per statement step, and every hand-over costs the delivery and MQTT threads a wake-up.
        """
        done = list(rows)
        for i in range(0, len(done), INSERT_CHUNK):
            chunk = done[i:i + INSERT_CHUNK]
            sql = self._insert_sql.get(len(chunk))
            if sql is None:
                sql = self._insert_sql[len(chunk)] = f"INSERT INTO events({COLUMNS}) VALUES " + ",".join(
                    [_ROW_MARKS] * len(chunk))
            self._db.execute(sql, list(chain.from_iterable(chunk)))
        rows.clear()
        return done

    def _make_room(self, need: int, priority: int, evicted: Counter[str]) -> tuple[int, list[int]]:
        """Delete the oldest rows of priority <= ``priority`` until ``need`` bytes are free: (bytes, rows)."""
        freed = 0
        deleted: list[int] = []
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
                freed += self._delete(victims)[1]
                deleted.extend(victims)
        return freed, deleted

    def _purge_settled(self, taken: list[int]) -> tuple[int, int]:
        """Delete the acknowledged rows waiting for it, noting them in ``taken`` (to give back on a
        rollback); returns (rows, bytes). Caller holds the lock, in a transaction."""
        ns = self._recent.take_settled()
        taken += ns
        return self._delete(ns) if ns else (0, 0)

    def _delete(self, ns: Sequence[int]) -> tuple[int, int]:
        """Delete rows; returns (rows, bytes) actually deleted. Caller holds the lock, in a transaction.

        Two statements whatever the count: each row stepped through would release and re-take the GIL.
        Acknowledgements mostly come as one run of consecutive rows: then a range, which SQLite walks
        in row order (a third cheaper than looking each row up from a JSON list).
        """
        lo, hi = min(ns), max(ns)
        args: tuple[int, int] | tuple[str]
        if hi - lo + 1 == len(ns) and len(set(ns)) == len(ns):
            where, args = _IN_RANGE, (lo, hi)
        else:
            where, args = _IN_LIST, (json.dumps(list(ns)),)
        rows, size = self._db.execute(f"SELECT COUNT(*), TOTAL(size) FROM events WHERE {where}", args).fetchone()
        if rows:
            self._db.execute(f"DELETE FROM events WHERE {where}", args)
        return rows, int(size)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    # -- delivery --------------------------------------------------------------------------------
    def peek(self, limit: int, after: Mapping[int, int] | None = None) -> list[Record]:
        """Up to ``limit`` undelivered rows: highest priority first, oldest first within one.

        ``after`` (priority -> row number) skips rows already handed out, for pipelined delivery.
        Rows this process wrote come from memory, without the database lock.
        """
        out: list[Record] = []
        after = after or {}
        for level in reversed(LEVELS):
            last = after.get(level, 0)
            while len(out) < limit:
                want = limit - len(out)
                recent = self._recent.after(level, last, want)
                if recent is not None:
                    out.extend(recent)
                    break
                with self._lock:  # rows older than the in-memory copy: from the database
                    self._flush()  # delivered rows must not be read back
                    start = self._recent.covered_from(level)
                    rows = self._db.execute(f"SELECT {COLUMNS} FROM events WHERE priority=? AND n>? AND n<? "
                                            "ORDER BY n LIMIT ?", (level, last, start, want)).fetchall()
                    if undeleted := self._recent.settled_set():  # the delete failed (disk full): skip them
                        rows = [r for r in rows if r[0] not in undeleted]
                out.extend(map(Record._make, rows))
                last = start - 1
            if len(out) >= limit:
                break
        return out

    def ack(self, ns: Iterable[int]) -> None:
        """Delivered: gone from delivery's view now; deleted now if no append holds the database, else
        by the next transaction (never waits for the producer)."""
        self._recent.settle(list(ns))
        if self._lock.acquire(blocking=False):
            try:
                self._flush()
            finally:
                self._lock.release()

    def flush(self) -> None:
        """Delete every acknowledged row now."""
        with self._lock:
            self._flush()

    def _flush(self) -> bool:
        """Caller holds the lock, outside a transaction. False when the delete failed (disk full, I/O
        error): the rows stay settled, out of delivery's view, and the next write deletes them.

        No BEGIN/COMMIT: the DELETE is its own transaction (autocommit), and the lock and the lock file
        keep every other writer out between the count and the delete. Two statements, not four.
        """
        ns = self._recent.take_settled()
        if not ns:
            return True
        try:
            rows, size = self._delete(ns)
        except sqlite3.Error as exc:
            self._recent.return_settled(ns)
            now = time.monotonic()
            if now - self._delete_logged >= DELETE_LOG_INTERVAL_S:
                self._delete_logged = now
                log.warning("telemetry outbox %s: cannot delete %d delivered events yet (%s); they are not sent "
                            "again and go with a later write (logged at most every %ds)", self.path, len(ns), exc,
                            DELETE_LOG_INTERVAL_S)
            return False
        self._depth -= rows
        self._bytes -= size
        return True

    def reject(self, ns: Iterable[int], reason: str) -> int:
        """Refused for good (by the peer, or too large): delete and count. Returns the rows deleted."""
        ns = list(ns)
        if not ns:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                rows, size = self._delete(ns)
                self._counters["rejected"] += rows
                self._db.execute(_SET_COUNTER, ("rejected", self._counters["rejected"]))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:  # disk full: out of delivery's view now, deleted by a later write
                self._rollback()
                log.warning("telemetry outbox %s: cannot delete %d refused events yet (%s)", self.path, len(ns), exc)
                self._recent.settle(ns)
                self._counters["rejected"] += len(ns)
                return len(ns)
            self._recent.discard(ns)
            self._depth -= rows
            self._bytes -= size
        return rows

    # -- state -----------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Events stored and not yet acknowledged."""
        return self._depth - self._recent.settled_count

    def last_seq(self, stream: str) -> int:
        with self._lock:
            return self._seq.get(stream, 0)

    def stats(self) -> OutboxStats:
        with self._lock:
            try:
                row = self._db.execute("SELECT created FROM events ORDER BY n LIMIT 1").fetchone()
            except sqlite3.Error as exc:  # an I/O error must not cost the health event
                log.debug("outbox stats: %s", exc)
                row = None
            evicted = {k.split(".", 1)[1]: v for k, v in self._counters.items() if k.startswith("evicted.")}
            return OutboxStats(depth=self.depth, bytes=self._bytes,
                               oldest_age_s=None if row is None else round(max(0.0, self._clock() - row[0]), 3),
                               evicted=evicted, rejected=self._counters["rejected"])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._flush()
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except (sqlite3.Error, TelemetryError) as exc:  # pragma: no cover - best effort
                log.debug("outbox checkpoint failed: %s", exc)
            self._db.close()
            self._lockfile.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
