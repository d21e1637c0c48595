"""Outbox append + commit throughput: one event per commit vs batched commits, for both fsync
policies, against a bare awscrt MQTT5 QoS 1 publish loop to a local Mosquitto in the same run.

    .venv/bin/python bench/bench_outbox.py [--events 20000] [--rounds 3] [--json]

An append is the whole write path: seq assigned, the event encoded to JSON, the row inserted, the
transaction committed. Target: >= 10,000 events/s with batched commits. The heap is frozen as the
service freezes it after start-up, and each case starts from ``heap.refreeze()`` (see bench_publish).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests/ holds the broker harness

from bench_publish import bare_publish_rate, make_events, report

from edgeinfer.core import heap
from edgeinfer.core.telemetry.events import ResultEvent
from edgeinfer.core.telemetry.outbox import Outbox, Pending
from tests.telemetry.mosquitto import MOSQUITTO, Mosquitto

TOPIC = "edgeinfer/bench/result"


def append_rate(events: list[ResultEvent], work: Path, per_commit: int, fsync: str) -> float:
    work.mkdir(parents=True)
    items = [Pending(e, (TOPIC,)) for e in events]
    heap.refreeze()
    with Outbox(work / "outbox.db", 1 << 30, 128 * 1024, fsync) as box:
        t0 = time.perf_counter()
        for i in range(0, len(items), per_commit):
            box.append(items[i:i + per_commit])
        elapsed = time.perf_counter() - t0
        assert box.depth == len(items)
    return len(items) / elapsed


def run(n: int, rounds: int, with_broker: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with heap.frozen_heap():
        return _run(make_events(n), rounds, with_broker)


def _run(events: list[ResultEvent], rounds: int, with_broker: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    n = len(events)
    work = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    cases = [(1, "normal"), (100, "normal"), (1000, "normal"), (1, "full"), (100, "full")]
    samples: dict[tuple[int, str], list[float]] = {c: [] for c in cases}
    for r in range(rounds):
        for per_commit, fsync in cases:
            count = n if per_commit > 1 or fsync == "normal" else min(n, 2000)  # fsync per event is slow
            samples[(per_commit, fsync)].append(append_rate(events[:count], work / f"{r}-{per_commit}-{fsync}",
                                                            per_commit, fsync))
    rows: list[dict[str, Any]] = [{"path": f"outbox, {p} event(s)/commit, fsync={f}",
                                   "events/s (median)": statistics.median(s), "min": min(s), "max": max(s)}
                                  for (p, f), s in samples.items()]
    extra: dict[str, Any] = {"events": n, "rounds": rounds, "target": "batched >= 10,000 events/s"}
    if with_broker and MOSQUITTO:
        broker = Mosquitto(work / "broker", persistence=False).start()
        try:
            payloads = [e.encode() for e in events]
            bare = [bare_publish_rate(broker.port, payloads) for _ in range(rounds)]
        finally:
            broker.stop()
        rows.append({"path": "bare awscrt publish loop (QoS 1, local Mosquitto, as in bench_publish)",
                     "events/s (median)": statistics.median(bare), "min": min(bare), "max": max(bare)})
    return rows, extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-broker", action="store_true", help="skip the bare publish loop")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows, extra = run(args.events, args.rounds, not args.no_broker)
    report("outbox append + commit", rows, args.json, extra)


if __name__ == "__main__":
    main()
