"""SIGTERM/SIGINT for every entry point: the first asks for an orderly stop (telemetry drains for
``drain_timeout_s``), a second exits at once. The outbox commits each event, so an immediate exit loses
nothing that was stored: it stays there for the next start."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """``with StopSignals() as stop: while not stop.wait(0.2): ...`` — ``stop`` is a threading.Event."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self.event

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            os.write(2, f"second {signal.Signals(signum).name}: exiting now\n".encode())
            os._exit(128 + signum)
        self.event.set()
