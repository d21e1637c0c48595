"""The SQLite outbox on its own: order, persisted sequence numbers, byte bound and eviction order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edgeinfer.core.errors import TelemetryError
from edgeinfer.core.telemetry.events import AlertEvent, EventBase, ResultEvent, SummaryEvent
from edgeinfer.core.telemetry.outbox import Outbox, Pending

BASE = {"device": "dev-1", "model_version": "1"}


def result(i: int, pad: int = 0) -> ResultEvent:
    return ResultEvent(**BASE, source="cam" + "x" * pad, frame=i, width=640, height=480, task="detection")


def summary() -> SummaryEvent:
    return SummaryEvent(**BASE, start=0, end=1, frames=10, fps=10)


def alert(i: int) -> AlertEvent:
    return AlertEvent(**BASE, rule=f"r{i}", evidence={"source": "cam", "frame": i, "frame_ts": 0, "since_ts": 0,
                                                      "matched": 1, "considered": 1, "count": 1, "max_score": 0.9})


def put(box: Outbox, *events: EventBase) -> None:
    box.append([Pending(e, (f"t/{e.type}",)) for e in events])


def open_box(path: Path, max_bytes: int = 1 << 20, max_event: int = 128 * 1024) -> Outbox:
    return Outbox(path / "outbox.db", max_bytes, max_event)


def test_alerts_first_then_each_stream_in_seq_order(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:
        put(box, result(0), result(1), summary(), alert(0), result(2), alert(1))
        rows = box.peek(100)
        assert [(r.type, r.seq) for r in rows] == [("alert", 1), ("alert", 2), ("summary", 1), ("result", 1),
                                                   ("result", 2), ("result", 3)]
        box.ack([rows[0].n, rows[3].n])
        assert [(r.type, r.seq) for r in box.peek(2)] == [("alert", 2), ("summary", 1)]
        assert box.depth == 4
        assert box._db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 4  # deleted, not only hidden
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_seq_survives_reopen_and_each_type_counts_alone(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:
        put(box, result(0), result(1), alert(0))
        box.ack(r.n for r in box.peek(10))
    with open_box(tmp_path) as box:
        put(box, result(2), alert(1), summary())
        assert sorted((r.type, r.seq) for r in box.peek(10)) == [("alert", 2), ("result", 3), ("summary", 1)]


def test_full_outbox_evicts_results_then_summaries_and_counts(tmp_path: Path) -> None:
    one = len(result(0).encode()) + len("t/result") + 64
    with open_box(tmp_path, max_bytes=one * 6) as box:
        put(box, *(result(i) for i in range(5)))
        put(box, summary(), summary())  # 2 results make room
        assert box.stats().evicted == {"result": 2}
        assert [(r.type, r.seq) for r in box.peek(100)] == [("summary", 1), ("summary", 2), ("result", 3),
                                                            ("result", 4), ("result", 5)]
        put(box, *(alert(i) for i in range(4)))  # needs all the results and both summaries
        assert [(r.type, r.seq) for r in box.peek(100)] == [("alert", i) for i in range(1, 5)]
        stats = box.stats()
        assert stats.evicted == {"result": 5, "summary": 2}
        assert stats.bytes <= one * 6
    with open_box(tmp_path, max_bytes=one * 6) as box:  # counters are persisted
        assert box.stats().evicted == stats.evicted


def test_a_result_never_displaces_an_alert(tmp_path: Path) -> None:
    size = len(alert(0).encode()) + len("t/alert") + 64
    with open_box(tmp_path, max_bytes=size * 2) as box:
        put(box, alert(0), alert(1))
        out = box.append([Pending(result(0), ("t/result",))])
        assert out.evicted == {"result": 1}
        assert [r.type for r in box.peek(10)] == ["alert", "alert"]


def test_oversize_event_is_rejected_without_using_a_seq(tmp_path: Path) -> None:
    with open_box(tmp_path, max_event=2048) as box:
        out = box.append([Pending(result(0, pad=4000), ("t",)), Pending(result(1), ("t",))])
        assert len(out.rejected) == 1 and "over the 2048-byte message limit" in out.rejected[0][1]
        assert [(r.seq, r.type) for r in box.peek(10)] == [(1, "result")]
        assert box.stats().rejected == 1


def test_one_process_per_outbox(tmp_path: Path) -> None:
    with open_box(tmp_path), pytest.raises(TelemetryError, match="another edgeinfer process"):
        open_box(tmp_path)


def test_rejected_rows_are_counted(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:
        put(box, result(0), result(1))
        rows = box.peek(10)
        assert box.reject([rows[0].n], "PUBACK NOT_AUTHORIZED") == 1
        assert box.stats().rejected == 1 and box.depth == 1


def test_damaged_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "outbox.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TelemetryError, match="move the damaged file away"):
        open_box(tmp_path)
    assert sqlite3.sqlite_version_info >= (3, 38)  # json_each built in (deletes by row list)


def test_rows_from_memory_and_disk_come_in_order_exactly_once(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:  # an earlier run: its rows are only on disk after reopening
        put(box, *(result(i) for i in range(5)))
    with Outbox(tmp_path / "outbox.db", 1 << 20, 128 * 1024, memory_bytes=2000) as box:  # ~5 rows in memory
        for i in range(5, 40):
            put(box, result(i))
        put(box, alert(0))
        cursor: dict[int, int] = {}
        seen: list[tuple[str, int]] = []
        while rows := box.peek(7, cursor):  # pipelined reads, as delivery does
            for r in rows:
                cursor[r.priority] = max(cursor.get(r.priority, 0), r.n)
            seen += [(r.type, r.seq) for r in rows]
        assert seen == [("alert", 1)] + [("result", i) for i in range(1, 41)]


def test_ack_never_waits_for_a_writer_and_the_next_write_deletes(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:
        put(box, result(0), result(1), result(2))
        rows = box.peek(10)
        with box._lock:  # an append holding the database
            box.ack([rows[0].n, rows[1].n])  # returns at once
            assert [r.seq for r in box.peek(10, {0: 0})] == [3] and box.depth == 1
        count = lambda: box._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]  # noqa: E731
        assert count() == 3  # hidden from delivery, still stored: a crash now sends them again
        put(box, result(3))  # the next transaction deletes them
        assert count() == 2 and box.depth == 2
        box.ack([r.n for r in box.peek(10)])
        assert count() == 0 and box.depth == 0


def test_acks_delete_exactly_their_rows_whether_consecutive_or_scattered(tmp_path: Path) -> None:
    with open_box(tmp_path) as box:
        put(box, *(result(i) for i in range(4)))
        put(box, alert(0))  # row 5 sits between results 4 and 6
        put(box, *(result(i) for i in range(4, 8)))
        rows = {(r.type, r.seq): r for r in box.peek(20)}
        stored = lambda: box._db.execute("SELECT type, seq FROM events ORDER BY n").fetchall()  # noqa: E731
        stored_bytes = lambda: box._db.execute("SELECT TOTAL(size) FROM events").fetchone()[0]  # noqa: E731
        box.ack([rows["result", s].n for s in (2, 3, 4)])  # consecutive row numbers: one range
        assert stored() == [("result", 1), ("alert", 1), ("result", 5), ("result", 6), ("result", 7),
                            ("result", 8)]
        box.ack([rows["result", 1].n, rows["result", 5].n])  # scattered: the alert's row lies between
        assert stored() == [("alert", 1), ("result", 6), ("result", 7), ("result", 8)]
        assert box.depth == 4 and box.stats().bytes == stored_bytes()
        box.ack([rows["result", 6].n, rows["result", 6].n, rows["result", 8].n])  # as many as a range, not one
        assert stored() == [("alert", 1), ("result", 7)] and box.stats().bytes == stored_bytes()
