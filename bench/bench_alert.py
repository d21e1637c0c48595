"""Frame in -> alert emitted latency (p50/p99): from ``sink.on_result(frame)`` to the alert being
committed in the outbox (emitted: it survives a crash from here on), and to its arrival at an
independent subscriber of a local Mosquitto (delivered), while the delivery thread runs; against
a broker with default settings and one with ``set_tcp_nodelay true``.

    .venv/bin/python bench/bench_alert.py [--frames 1000] [--fps 200] [--json] [--plot docs/img/bench-alert-latency.png]

Frames alternate person / no person, so the rule (1 frame, default hysteresis) fires on every
other frame; frames are paced at ``--fps`` so the figure is latency, not queueing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests/ holds the broker harness

from bench_publish import report

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.plots import latency_cdf
from edgeinfer.core.telemetry.events import AlertEvent, EventBase
from edgeinfer.core.telemetry.service import TelemetryService
from tests.telemetry.mosquitto import Mosquitto, Subscriber
from tests.telemetry.synthetic import detection, frame, run_context


def measure(broker: Mosquitto, work: Path, frames: int, fps: float, fsync: str) -> tuple[dict[str, Any],
                                                                                        list[float], list[float]]:
    emitted: dict[str, tuple[float, int]] = {}  # alert id -> (perf_counter when committed, frame index)

    def on_emit(event: EventBase) -> None:
        if isinstance(event, AlertEvent):
            emitted[event.id] = (time.perf_counter(), event.evidence.frame)

    sub = Subscriber(broker.port, topic="edgeinfer/+/alert", client_id=f"bench-{fsync}").start()
    cfg = EdgeInferConfig.model_validate({
        "device_id": "bench", "state_dir": str(work / f"state-{fsync}"),
        "telemetry": {"transport": broker.uri(), "mode": "summary", "fsync": fsync, "health_interval_s": 3600},
        "rules": [{"name": "person", "when": {"label": "person", "min_score": 0.5}}]})
    service = TelemetryService.from_config(cfg, run_context("bench"))
    service.add_listener(on_emit)
    service.start()
    frame_in: dict[int, float] = {}
    t0 = time.monotonic()
    for i in range(frames):
        result = frame(i, time.time(), [detection("person", 0.9)] if i % 2 == 0 else [])
        frame_in[i] = time.perf_counter()
        service.sink.on_result(result)
        if (pause := t0 + (i + 1) / fps - time.monotonic()) > 0:
            time.sleep(pause)  # a camera's pace: measures latency, not queueing
    service.sink.close({})
    service.drain(30)
    sub.wait_for(lambda rs: len(rs) >= len(emitted), 30)
    service.close()
    sub.stop()
    arrived = {e["id"]: r.at for r in sub.received for e in r.events()}
    emit_ms = [(t - frame_in[f]) * 1e3 for t, f in emitted.values()]
    deliver_ms = [(arrived[i] - frame_in[f]) * 1e3 for i, (_, f) in emitted.items() if i in arrived]
    row = {"fsync": fsync, "alerts": len(emitted), "emitted p50 ms": float(np.percentile(emit_ms, 50)),
           "emitted p99 ms": float(np.percentile(emit_ms, 99)),
           "delivered p50 ms": float(np.percentile(deliver_ms, 50)),
           "delivered p99 ms": float(np.percentile(deliver_ms, 99)), "delivered": len(deliver_ms)}
    return row, emit_ms, deliver_ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--fps", type=float, default=200.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=Path, help="write the latency distributions as a PNG")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-alert-"))
    rows = []
    series: dict[str, list[float]] = {}
    for nodelay in (False, True):  # Mosquitto's default Nagle delays small packets to subscribers
        broker = Mosquitto(work / f"broker-{nodelay}", persistence=False,
                           extra=("set_tcp_nodelay true",) if nodelay else ()).start()
        try:
            for fsync in ("normal", "full"):
                row, emit_ms, deliver_ms = measure(broker, work / f"{nodelay}", args.frames, args.fps, fsync)
                name = "set_tcp_nodelay" if nodelay else "default"
                rows.append({"broker": name, **row})
                if nodelay:
                    series[f"committed to the outbox, fsync {fsync}"] = emit_ms
                series[f"at a subscriber, {name} broker, fsync {fsync}"] = deliver_ms
        finally:
            broker.stop()
    report("frame in -> alert (rule: 1 frame; local Mosquitto)", rows, args.json,
           {"frames": args.frames, "fps": args.fps})
    if args.plot:
        latency_cdf(series, args.plot, f"frame in -> alert, {args.frames} frames at {args.fps:g} fps, "
                    "rule over 1 frame, delivery running")


if __name__ == "__main__":
    main()
