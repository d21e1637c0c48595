"""Health events: what model and backend actually run (degraded + reason), CPU, memory,
temperature where readable, pipeline queue depths, outbox depth/age/evictions, link state, and
telemetry's own state (degraded while the outbox cannot store; events dropped for it).

Besides every ``interval_s``, ``poke()`` sends one at once (telemetry entering or leaving degraded).
A health event that cannot be stored still reaches the emitter's listeners."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from .emitter import Emitter
from .events import HealthEvent
from .outbox import Outbox
from .stats import Stats, StatsSnapshot
from .transport import Transport

log = logging.getLogger(__name__)
QueueDepths = Callable[[], dict[str, int]]
RunStateProvider = Callable[[], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SystemSample:
    cpu_percent: float | None
    rss_bytes: int | None
    mem_percent: float | None
    temperature_c: float | None


class SystemProbe:
    """psutil readings; every field is None where the platform cannot tell."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # primes the counter: the next call reports since now

    def sample(self) -> SystemSample:
        return SystemSample(cpu_percent=_safe(lambda: round(self._proc.cpu_percent(None), 1)),
                            rss_bytes=_safe(lambda: int(self._proc.memory_info().rss)),
                            mem_percent=_safe(lambda: round(psutil.virtual_memory().percent, 1)),
                            temperature_c=_safe(_hottest))


def _hottest() -> float | None:
    read = getattr(psutil, "sensors_temperatures", None)
    temps = [t.current for sensors in (read() if read else {}).values() for t in sensors if t.current]
    return round(max(temps), 1) if temps else None


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (OSError, psutil.Error, AttributeError, ValueError):
        return None


class HealthReporter:
    def __init__(self, emitter: Emitter, outbox: Outbox | None, transport: Transport | None, stats: Stats,
                 interval_s: float, probe: SystemProbe | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emitter = emitter
        self._outbox = outbox
        self._transport = transport
        self._stats = stats
        self._interval_s = interval_s
        self._probe = probe or SystemProbe()
        self._clock = clock
        self._started = clock()
        self._queue_depths: QueueDepths | None = None
        self._run_state: RunStateProvider | None = None
        self._host_state: RunStateProvider | None = None
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None

    def set_queue_depths_provider(self, fn: QueueDepths | None) -> None:
        self._queue_depths = fn

    def set_run_state_provider(self, fn: RunStateProvider | None) -> None:
        """``fn() -> {"state", "reason", "degraded"}``: the run session's state, in every health event."""
        self._run_state = fn

    def set_host_state_provider(self, fn: RunStateProvider | None) -> None:
        """``fn() -> {"missing": [...], ...}``: what the host (the Greengrass nucleus) does not offer."""
        self._host_state = fn

    def build(self, cause: str | None = None) -> HealthEvent | None:
        ctx = self._emitter.ctx
        info = ctx.backend
        sample = self._probe.sample()
        snap = self._stats.snapshot()
        fields: dict[str, Any] = {
            "model": {"name": ctx.model_name, "version": ctx.model_version, "sha256": ctx.model_sha256},
            "backend": {"backend": info.backend, "device": info.device, "precision": info.precision,
                        "requested": list(info.requested), "active": list(info.active)},
            "degraded": info.degraded, "reason": info.reason,
            "cpu_percent": sample.cpu_percent, "rss_bytes": sample.rss_bytes, "mem_percent": sample.mem_percent,
            "temperature_c": sample.temperature_c, "queues": self._depths(),
            "invalid": snap.invalid, "uptime_s": round(self._clock() - self._started, 1),
        }
        if self._outbox is not None:
            o = self._outbox.stats()
            fields["outbox"] = {"depth": o.depth, "bytes": o.bytes, "oldest_age_s": o.oldest_age_s,
                                "evicted": o.evicted, "rejected": o.rejected}
            fields["telemetry"] = self._telemetry_state(snap)
        if self._transport is not None:
            link = self._transport.status()
            fields["transport"] = {"transport": self._transport.describe(), "connected": link.connected,
                                   "error": link.error, "sent_events": snap.sent_events, "sent_bytes": snap.sent_bytes}
        if cause is not None:
            fields["cause"] = cause
        if self._run_state is not None:
            fields["run"] = self._run_state()
        if self._host_state is not None:
            fields["nucleus"] = self._host_state()
        return self._emitter.build(HealthEvent, **fields)

    def _telemetry_state(self, snap: StatsSnapshot) -> dict[str, Any]:
        st = self._emitter.failures.state()
        return {"degraded": st.degraded, "reason": st.reason, "last_error": st.last_error,
                "since": None if st.since is None else dt.datetime.fromtimestamp(st.since, dt.timezone.utc),
                "write_failed": snap.write_failed, "write_failed_by_type": snap.write_failed_by_type or None}

    def poke(self) -> None:
        """A health event now, from the health thread (never the caller's): no-op before ``start``."""
        self._poke.set()

    def emit(self, cause: str | None = None) -> HealthEvent | None:
        event = self.build(cause)
        if event is None:
            return None
        stored = self._emitter.emit(event)
        return None if stored is None else stored.event  # type: ignore[return-value]

    def _depths(self) -> dict[str, int]:
        if self._queue_depths is None:
            return {}
        try:
            return {str(k): int(v) for k, v in self._queue_depths().items()}
        except Exception as exc:  # the provider belongs to the pipeline: never let it break health
            log.warning("queue depth provider failed: %s", exc)
            return {}

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="edgeinfer-telemetry-health", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        while True:
            self._poke.wait(self._interval_s)
            self._poke.clear()
            if self._stop.is_set():
                return
            try:
                self.emit()
            except Exception:
                log.exception("health event failed")
