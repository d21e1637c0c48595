"""A sink that keeps results per stream, so a test waits for a stream's frames instead of polling for them."""

from __future__ import annotations

import threading
from typing import Any

from edgeinfer.core.sinks.base import RunContext
from edgeinfer.core.types import FrameResult


class ByStream:
    """Results per stream as they come; a test waits for a stream's frames instead of polling."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.results: dict[str | None, list[FrameResult]] = {}

    def start(self, ctx: RunContext) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        with self._cond:
            self.results.setdefault(result.stream, []).append(result)
            self._cond.notify_all()

    def close(self, summary: dict[str, Any]) -> None:
        pass

    def count(self, stream: str) -> int:
        with self._cond:
            return len(self.results.get(stream, []))

    def wait_for(self, stream: str, n: int, timeout_s: float = 20.0) -> bool:
        """Block until ``stream`` has ``n`` more results than now."""
        with self._cond:
            target = len(self.results.get(stream, [])) + n
            return self._cond.wait_for(lambda: len(self.results.get(stream, [])) >= target, timeout_s)
