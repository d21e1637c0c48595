"""A full disk under the state dir never stops inference (real tmpfs, real SQLite outbox, real pipeline).

On main the outbox's "database or disk is full" propagated from the telemetry sink into the frame
path and the run died (the CLI exited 2). Now: every frame is inferred, the events that cannot be
stored are dropped and counted, telemetry says it is degraded and why, it recovers by itself when
space returns, and nothing committed to the outbox before (or after) is lost.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeinfer.core.config import EdgeInferConfig, PipelineConfig
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.pipeline import Pipeline
from edgeinfer.core.sources import MemorySource
from edgeinfer.core.telemetry.events import EventBase, HealthEvent, ResultEvent
from edgeinfer.core.telemetry.service import TelemetryService
from edgeinfer.core.telemetry.stdio import FileTransport
from edgeinfer.core.telemetry.transport import Message
from edgeinfer.core.types import FrameResult
from tests.core.colour_model import LABELS, frame, make_colour_model
from tests.telemetry.synthetic import detection, run_context
from tests.telemetry.synthetic import frame as result_frame

from .diskfull import SmallDisk, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")

FULL = "outbox write failed: database or disk is full"
FAST = {"health_interval_s": 3600, "retry": {"initial_s": 0.05, "max_s": 0.3}, "send_timeout_s": 5,
        "drain_timeout_s": 20}


@pytest.fixture(scope="module")
def colour_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_model(tmp_path_factory.mktemp("colour"))


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[Callable[[str, int], SmallDisk]]:
    made: list[SmallDisk] = []

    def mount(name: str, size: int) -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size).__enter__()
        made.append(disk)
        return disk

    yield mount
    for disk in made:
        disk.__exit__(None, None, None)


class Schedule:
    """A sink placed before telemetry's: ``at[k]()`` runs on the sink thread just before frame ``k``
    reaches the telemetry sink, so the faults land exactly between two frames' events."""

    def __init__(self, at: dict[int, Callable[[], None]]) -> None:
        self.at = at

    def start(self, ctx: Any) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        if (hook := self.at.get(result.index)) is not None:
            hook()

    def close(self, summary: dict[str, Any]) -> None:
        pass


class Collect:
    def __init__(self) -> None:
        self.results: list[FrameResult] = []

    def start(self, ctx: Any) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.results.append(result)

    def close(self, summary: dict[str, Any]) -> None:
        pass


class Seen:
    """Every event the emitter made, stored (seq > 0) or dropped for the full disk (seq 0)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[EventBase] = []

    def __call__(self, event: EventBase) -> None:
        with self._lock:
            self.events.append(event.model_copy())

    def stored(self) -> list[EventBase]:
        with self._lock:
            return [e for e in self.events if e.seq > 0]

    def dropped(self) -> list[EventBase]:
        with self._lock:
            return [e for e in self.events if e.seq == 0]


def delivered(path: Path) -> list[dict[str, Any]]:
    """Every line of the file transport's output; each must be a whole JSON event."""
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the telemetry file ends in a partial line"
    return [json.loads(line) for line in lines[:-1]]


def colours(n: int) -> list[str]:
    return [LABELS[(i * 7 + i // 3) % 3] for i in range(n)]


def full_disk_service(disks: Callable[[str, int], SmallDisk]) -> tuple[SmallDisk, SmallDisk, Path, Any, Seen]:
    """A telemetry service with its state dir and its file transport's output each on a small disk."""
    state = disks("state", 16 << 20)
    out = disks("out", 1 << 20)  # the file transport's disk: full first, so events wait in the outbox
    events_file = out.path / "events.jsonl"
    cfg = EdgeInferConfig.model_validate({"device_id": "dev-1", "state_dir": str(state.path), "telemetry": {
        "transport": f"file:{events_file}", "mode": "results", **FAST}})
    service = TelemetryService.from_config(cfg, run_context())
    seen = Seen()
    service.add_listener(seen)
    return state, out, events_file, service, seen


def test_a_full_state_disk_never_stops_inference_and_nothing_committed_is_lost(
        colour_pkg: Path, disks: Callable[[str, int], SmallDisk]) -> None:
    state, out, events_file, service, seen = full_disk_service(disks)  # state: room for the WAL before ballast
    n = 400
    names = colours(n)
    marks: dict[str, Any] = {}

    def fill_out() -> None:
        out.fill()

    def fill_state() -> None:
        marks["depth_at_fill"] = service.outbox.depth if service.outbox else 0
        marks["committed_at_fill"] = {e.id for e in seen.stored()}
        state.fill()

    def free_both() -> None:
        marks["degraded"] = service.degraded()
        marks["state"] = service.degraded_state()
        marks["failed"] = service.snapshot().write_failed
        state.free()
        out.free()

    source = MemorySource([frame(c) for c in names])
    faults = Schedule({100: fill_out, 150: fill_state, 300: free_both})
    model = load_model(load_package(colour_pkg), max_batch=1)
    collect = Collect()
    service.start()
    try:
        service.sink.start(run_context())
        summary = Pipeline(model, source, [collect, faults, service.sink], PipelineConfig(queue_size=4)).run()
        service.sink.close(summary)
        left = service.drain()
    finally:
        service.close()
        model.close()

    # inference went on: every frame, in order, with its own answer
    assert summary["frames"] == n
    assert [r.output.classes[0].label for r in collect.results] == names
    # events were dropped and counted while the disk was full; telemetry said so, and why
    snap = service.snapshot()
    assert marks["failed"] > 0 and snap.write_failed == marks["failed"]  # nothing dropped after the free
    assert snap.write_failed_by_type.get("result", 0) > 0
    assert marks["degraded"] == FULL
    assert marks["state"].degraded and marks["state"].since is not None
    results_seen = [e for e in seen.events if isinstance(e, ResultEvent)]
    assert sorted(e.frame for e in results_seen) == list(range(n))  # each made once: stored, or dropped
    dropped = [e for e in seen.dropped() if isinstance(e, ResultEvent)]
    assert len(dropped) == snap.write_failed_by_type["result"]
    assert all(150 <= e.frame < 300 for e in dropped)  # only while the ballast was there
    # health: the degraded event reached the listeners at once (not storable), the last one reports the outage
    degraded_health = [e for e in seen.events if isinstance(e, HealthEvent) and e.telemetry and e.telemetry.degraded]
    assert degraded_health and degraded_health[0].telemetry is not None
    assert degraded_health[0].telemetry.reason == FULL
    final = [e for e in seen.stored() if isinstance(e, HealthEvent)][-1]
    assert final.telemetry is not None and not final.telemetry.degraded and final.telemetry.reason is None
    assert final.telemetry.write_failed == snap.write_failed and final.telemetry.last_error == FULL
    assert service.degraded() is None  # it cleared by itself
    # recovered: events after the free were stored and delivered again; nothing committed is lost
    assert left == 0
    got = {e["id"] for e in delivered(events_file)}
    committed = {e.id for e in seen.stored()}
    assert marks["depth_at_fill"] > 0, "no event was waiting in the outbox when the disk filled"
    assert marks["committed_at_fill"] <= got
    assert committed <= got
    late = [e for e in seen.stored() if isinstance(e, ResultEvent) and e.frame >= 300]
    assert len(late) == n - 300 and {e.id for e in late} <= got


def test_the_file_transport_writes_whole_lines_or_nothing(disks: Callable[[str, int], SmallDisk]) -> None:
    disk = disks("out", 256 << 10)
    path = disk.path / "events.jsonl"
    transport = FileTransport(path)
    payload = b'{"type":"result","pad":"' + b"x" * 300 + b'"}'
    try:
        assert not transport.send([Message(0, "t", payload, "result", "1.0.0")], 1.0).error
        disk.fill()  # the file's last page still has room: a long write succeeds part-way, then ENOSPC
        before = path.read_bytes()
        batch = [Message(i, "t", payload, "result", "1.0.0") for i in range(40)]  # 13 KB: more than the page
        result = transport.send(batch, 1.0)
        assert result.error and "No space left" in result.error
        assert not result.acked  # nothing acknowledged: the events stay in the outbox
        assert path.read_bytes() == before  # the partial write was cut back
        disk.free()
        result = transport.send(batch, 1.0)
        assert not result.error and result.acked == set(range(40))
    finally:
        transport.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(line == payload for line in lines[:-1]) and len(lines) == 42


def test_the_delivery_thread_survives_a_full_disk_during_ack(colour_pkg: Path,
                                                               disks: Callable[[str, int], SmallDisk]) -> None:
    """Events are stored, the disk fills, then they are delivered: the deletes fail, delivery goes on,
    nothing is sent twice meanwhile, and the rows are deleted once there is room."""
    state, out, events_file, service, seen = full_disk_service(disks)
    assert service.outbox is not None
    out.fill()  # nothing can be delivered yet
    service.start()
    try:
        for i in range(50):
            service.sink.on_result(result_frame(i, time.time(), [detection()]))
        assert service.outbox.depth >= 50
        state.fill()  # the outbox cannot even delete what is delivered now
        out.free()
        deadline = time.monotonic() + 10
        while service.outbox.depth and time.monotonic() < deadline:  # delivered: gone from delivery's view
            time.sleep(0.02)
        assert service.outbox.depth == 0
        with sqlite3.connect(f"file:{service.outbox.path}?mode=ro", uri=True) as db:
            on_disk = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert on_disk >= 50, "the deletes should have failed on the full disk"
        state.free()
        service.sink.on_result(result_frame(50, time.time(), [detection()]))  # the next write deletes them
        assert service.drain(10) == 0
    finally:
        service.close()
    with sqlite3.connect(f"file:{service.outbox.path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    ids = [e["id"] for e in delivered(events_file)]
    assert len(ids) == len(set(ids))  # rows whose delete failed were never handed out again
    assert {e.id for e in seen.stored()} <= set(ids)


def test_edgeinfer_run_with_the_state_dir_on_a_disk_that_fills_exits_0_and_infers_every_frame(
        colour_pkg: Path, tmp_path: Path, disks: Callable[[str, int], SmallDisk]) -> None:
    state = disks("state", 16 << 20)
    events_file = tmp_path / "events.jsonl"
    out_dir = tmp_path / "out"
    n = 240
    conf = tmp_path / "site.yaml"
    conf.write_text(yaml.safe_dump({
        "model": {"path": str(colour_pkg)}, "source": {"uri": f"synthetic:64x48:{n}", "fps": 40},
        "output": {"dir": str(out_dir), "annotate": False, "print_detections": False}, "state_dir": str(state.path),
        "telemetry": {"transport": f"file:{events_file}", "mode": "results", **FAST}}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).with_name("edgeinfer")  # the installed console script, as a user runs it
    proc = subprocess.Popen([str(exe), "run", "--config", str(conf), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:  # frames flow and events are delivered
            if events_file.exists() and events_file.read_bytes().count(b'"type":"result"') >= 20:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the disk could be filled"
        state.fill()
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["frames"] == n
    assert len((out_dir / "results.jsonl").read_text().splitlines()) == n
    said = " ".join(stderr.split())  # the console wraps long log lines
    assert "telemetry degraded: outbox write failed: database or disk is full" in said
    events = delivered(events_file)
    frames_sent = {e["frame"] for e in events if e["type"] == "result"}
    assert 20 <= len(frames_sent) < n  # some were stored and delivered, the rest dropped once the disk filled
