"""Per-stage latency samples and percentiles (bounded memory for runs that last days)."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

#: the pipeline's stages in frame order; "total" (capture -> result) is recorded beside them
STAGES = ("read", "preprocess", "infer", "decode", "sinks")


class StageStats:
    """Thread-safe ring of the most recent samples per stage, in milliseconds."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._samples: dict[str, deque[float]] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            ring = self._samples.get(stage)
            if ring is None:
                ring = self._samples[stage] = deque(maxlen=self._capacity)
            ring.append(ms)
            self._counts[stage] = self._counts.get(stage, 0) + 1

    def percentiles(self, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, dict[str, float]]:
        with self._lock:
            snap = {k: np.fromiter(v, dtype=np.float64) for k, v in self._samples.items()}
        out: dict[str, dict[str, float]] = {}
        for stage, arr in snap.items():
            if arr.size:
                vals = np.percentile(arr, qs)
                out[stage] = {f"p{int(q)}": round(float(v), 3) for q, v in zip(qs, vals, strict=True)}
                out[stage]["mean"] = round(float(arr.mean()), 3)
                out[stage]["n"] = self._counts[stage]
        return out

    def samples(self, stage: str) -> list[float]:
        """The samples kept for ``stage`` (the newest ``capacity``), oldest first: a copy."""
        with self._lock:
            return list(self._samples.get(stage, ()))

    def p50(self, stage: str) -> float | None:
        with self._lock:
            ring = self._samples.get(stage)
            arr = np.fromiter(ring, dtype=np.float64) if ring else None
        return float(np.median(arr)) if arr is not None and arr.size else None
