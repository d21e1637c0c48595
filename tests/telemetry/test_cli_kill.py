"""kill -9 of a real `edgeinfer run` whose outbox holds a backlog (broker down), then a second run with
the broker up: every event arrives at an independent subscriber, gap-free per type, the first run's too."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from .mosquitto import MOSQUITTO, Mosquitto, Subscriber, seqs, wait_until
from .test_mqtt import has_seqs

EDGEINFER = Path(sys.executable).with_name("edgeinfer")  # the console script, as a user runs it
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")


def edgeinfer_run(model: Path, uri: str, state: Path, *extra: str) -> list[str]:
    return [str(EDGEINFER), "run", "--model", str(model), "--source", "synthetic:320x240", "--telemetry-mode",
            "results", "--telemetry", uri, "--state-dir", str(state), "-q", *extra]


def stored(db: Path) -> dict[str, list[int]]:
    """Committed seq numbers per event type, read-only (the device may be writing)."""
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        try:
            rows = con.execute("SELECT type, seq FROM events ORDER BY type, seq").fetchall()
        except sqlite3.OperationalError:  # schema not created yet
            return {}
    out: dict[str, list[int]] = defaultdict(list)
    for event_type, seq in rows:
        out[event_type].append(seq)
    return dict(out)


def test_sigkill_of_edgeinfer_run_with_a_backlog_then_a_new_run_delivers_everything(
        demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    model = demo_pkgs[0]
    broker = Mosquitto(tmp_path / "broker")  # its port is chosen, the broker not started: the device is offline
    state, db = tmp_path / "state", tmp_path / "state" / "outbox.db"
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(edgeinfer_run(model, broker.uri(), state), stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_until(lambda: len(stored(db).get("result", [])) >= 100, 40, 0.1), \
                (tmp_path / "first.log").read_text()
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
    assert first.returncode == -signal.SIGKILL
    backlog = stored(db)  # everything the first run committed: none of it was delivered
    assert backlog["result"] == list(range(1, len(backlog["result"]) + 1)) and backlog["health"] == [1]

    broker.start()
    subscriber = Subscriber(broker.port).start()
    try:
        second = subprocess.run(edgeinfer_run(model, broker.uri(), state, "--max-frames", "20",
                                              "--drain-timeout", "30"),
                                capture_output=True, text=True, timeout=50, check=False)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "everything delivered" in second.stdout
        assert stored(db) == {}
        last = backlog["result"][-1] + 20
        assert subscriber.wait_for(has_seqs("result", last), 15)
        events = subscriber.events()
        for event_type in {e["type"] for e in events}:  # result and health: no gaps after dedupe by id
            got = seqs(events, event_type)
            assert got == list(range(1, got[-1] + 1)), event_type
        assert seqs(events, "result")[-1] == last
        assert set(backlog["result"]) <= set(seqs(events, "result"))  # the killed run's events arrived
        assert len(seqs(events, "health")) >= 3  # first run's start; second run's start and end
    finally:
        subscriber.stop()
        broker.stop()
