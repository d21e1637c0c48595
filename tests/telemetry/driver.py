"""A device process for the kill -9 test: a TelemetryService over synthetic frames, as
`edgeinfer run` would drive it. Prints ``stored TYPE SEQ`` once each event is committed to the
outbox, and ``left N`` after draining. Run from the repository root:

    python -m tests.telemetry.driver --uri mqtt://127.0.0.1:1883 --frames 100 --fps 200
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.telemetry.events import EventBase
from edgeinfer.core.telemetry.service import TelemetryService

from .synthetic import detection, frame, run_context


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--uri", required=True)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--fps", type=float, default=200.0)
    p.add_argument("--drain", type=float, default=20.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    cfg = EdgeInferConfig.model_validate({"device_id": "dev-1", "telemetry": {
        "transport": args.uri, "mode": "results", "health_interval_s": 3600,
        "retry": {"initial_s": 0.05, "max_s": 0.5}}})
    lock = threading.Lock()

    def report(event: EventBase) -> None:
        with lock:
            sys.stdout.write(f"stored {event.type} {event.seq}\n")
            sys.stdout.flush()

    service = TelemetryService.from_config(cfg, run_context())
    service.add_listener(report)
    service.start()
    t0 = time.monotonic()
    for i in range(args.frames):
        service.sink.on_result(frame(i, time.time(), [detection("person", 0.8)]))
        pause = t0 + (i + 1) / args.fps - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # frame pacing: a camera's rate, not synchronisation
    service.sink.close({})
    left = service.drain(args.drain)
    service.close()
    sys.stdout.write(f"left {left}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
