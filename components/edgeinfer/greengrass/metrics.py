"""fps and latency as Greengrass component metrics (PutComponentMetric), every ``interval_s``.

The Java nucleus accepts PutComponentMetric only from components named ``aws.*`` (and then checks the
``aws.greengrass.ipc.componentmetric`` policy per metric name): for any other name the first call answers
UnauthorizedError. Greengrass Lite answers ServiceError. Either way the first failure means "this nucleus
does not offer it (to us)": it is recorded once (nucleus.py) and the reporter stops; the same figures keep
flowing in the health telemetry events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import Metric, MetricUnitType

from .nucleus import NucleusFeatures

log = logging.getLogger(__name__)


def _seconds(ms: float) -> float:
    return round(ms / 1e3, 6)


def metrics_from(stats: dict[str, Any], prev: tuple[int, float] | None, now: float) -> list[Metric]:
    """fps over the last interval, inference and capture-to-result p50 latency (seconds), frames so far."""
    frames = int(stats.get("frames") or 0)
    out = [Metric(name="frames", unit=MetricUnitType.COUNT, value=float(frames))]
    if prev is not None and now > prev[1]:
        out.append(Metric(name="fps", unit=MetricUnitType.COUNT_PER_SECOND,
                          value=round(max(0, frames - prev[0]) / (now - prev[1]), 3)))
    stages = stats.get("stages_ms") or {}
    if "infer" in stages:  # the IPC metric units have no milliseconds
        out.append(Metric(name="infer_s_p50", unit=MetricUnitType.SECONDS, value=_seconds(stages["infer"]["p50"])))
    if "total" in stages:  # capture -> result: the frame's age when its result is out (not a sum of stage p50s)
        out.append(Metric(name="latency_s_p50", unit=MetricUnitType.SECONDS, value=_seconds(stages["total"]["p50"])))
    return out


class MetricsReporter:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, stats: Callable[[], dict[str, Any]],
                 interval_s: float = 60.0, nucleus: NucleusFeatures | None = None) -> None:
        self._ipc = ipc
        self._nucleus = nucleus or NucleusFeatures()
        self._stats = stats
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.enabled = True
        self.sent = 0
        self._prev: tuple[int, float] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edgeinfer-gg-metrics", daemon=True)
        self._thread.start()

    def report(self) -> bool:
        """One PutComponentMetric now; False once the nucleus refused (it is not tried again)."""
        if not self.enabled:
            return False
        now = time.monotonic()
        stats = self._stats()
        metrics = metrics_from(stats, self._prev, now)
        self._prev = (int(stats.get("frames") or 0), now)
        if self._nucleus.attempt("PutComponentMetric", lambda: self._ipc.put_component_metric(metrics=metrics)) is None:
            self.enabled = False
            return False
        self.sent += 1
        return True

    def _run(self) -> None:
        """Report at once (so a refusal shows at start), then every interval."""
        try:
            if not self.report():
                return
            while not self._stop.wait(self._interval_s) and self.report():
                pass
        except Exception:
            log.exception("component metrics stopped")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
