"""TelemetryService: the one object the CLI and the adapters wire in.

```python
service = TelemetryService.from_config(cfg, ctx)      # transport from cfg.telemetry.transport
service.set_queue_depths_provider(pipeline.queue_depths)
service.start()                                      # delivery, health and hook threads
pipeline.run(sinks=[..., service.sink])              # sink.close() flushes the last window + health
left = service.drain(cfg.telemetry.drain_timeout_s)  # events still in the outbox for the next start
service.close()
```

Transport ``none``: no outbox and nothing sent; rules, hooks, listeners and byte counts still work.

A full or failing disk under the state dir never stops the pipeline: events that cannot be stored
are dropped and counted (``snapshot().write_failed``), ``degraded()`` says why, health events carry
``telemetry.degraded``, and storing resumes by itself when space returns.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import EdgeInferConfig
from ..errors import TelemetryError
from ..rules.actions import ActionOutcome, ActionRunner
from ..rules.config import HookConfig, RuleConfig
from ..rules.engine import RuleEngine
from ..sinks.base import RunContext
from .config import TelemetryConfig
from .degraded import DegradedState, WriteFailures
from .delivery import Delivery
from .emitter import Emitter, Listener
from .events import PRIORITY, EventBase
from .health import HealthReporter, QueueDepths, RunStateProvider, SystemProbe
from .outbox import Outbox, OutboxStats
from .registry import open_transport
from .sink import TelemetrySink
from .stats import Stats, StatsSnapshot
from .transport import Transport

log = logging.getLogger(__name__)
OUTBOX_FILE = "outbox.db"


class TelemetryService:
    def __init__(self, cfg: TelemetryConfig, ctx: RunContext, rules: list[RuleConfig],
                 outbox: Outbox | None, transport: Transport | None, probe: SystemProbe | None = None,
                 hooks: dict[str, HookConfig] | None = None,
                 stream_rules: dict[str, list[RuleConfig]] | None = None) -> None:
        if (outbox is None) != (transport is None):
            raise TelemetryError("a telemetry outbox needs a transport and a transport needs an outbox",
                                 "pass both, or neither for transport 'none'")
        self.cfg = cfg
        self.outbox = outbox
        self.transport = transport
        self.stats = Stats()
        self._delivery = Delivery(outbox, transport, cfg, self.stats) if outbox and transport else None
        where = f"the state dir {outbox.path.parent}" if outbox is not None else "the state dir"
        self._failures = WriteFailures(self.stats, where)
        self._emitter = Emitter(cfg, ctx, outbox, self.stats, self._delivery.wake if self._delivery else lambda: None,
                                self._failures)
        for event_type in PRIORITY:  # a bad topic template or device id fails here, not mid-run
            self._emitter.topic(event_type)
        self._actions = ActionRunner(self._on_action, hooks=hooks)
        self._health = HealthReporter(self._emitter, outbox, transport, self.stats, cfg.health_interval_s, probe)
        self._failures.on_change = lambda _degraded: self._health.poke()  # say so at once, both ways
        self.sink = TelemetrySink(cfg, self._emitter, RuleEngine(rules, stream_rules=stream_rules),
                                  self._actions, self._health, self.stats)
        self._started = False
        self._closed = False

    @classmethod
    def from_config(cls, cfg: EdgeInferConfig, ctx: RunContext, transport: Transport | None = None,
                    probe: SystemProbe | None = None) -> TelemetryService:
        """Build from the one config. ``transport`` overrides ``cfg.telemetry.transport`` (adapters pass theirs)."""
        tcfg = cfg.telemetry
        if transport is None:
            transport = open_transport(tcfg.transport, tcfg, ctx.device_id)
        outbox = None
        if transport is not None:
            limit = min(tcfg.max_payload_bytes, transport.max_payload_bytes or tcfg.max_payload_bytes)
            try:
                outbox = Outbox(cfg.resolved_state_dir() / OUTBOX_FILE, tcfg.max_outbox_bytes, limit, tcfg.fsync)
            except TelemetryError:
                transport.close()
                raise
            if outbox.depth:
                log.info("telemetry outbox holds %d events from an earlier run; sending them first", outbox.depth)
        return cls(tcfg, ctx, cfg.rules, outbox, transport, probe, hooks=cfg.hooks, stream_rules=stream_rules(cfg))

    def set_stream_rules(self, cfg: EdgeInferConfig) -> None:
        """The streams' own rules of ``cfg``, in place (an update that changed only those)."""
        self.sink.rules.set_stream_rules(stream_rules(cfg))

    # -- wiring ----------------------------------------------------------------------------------
    def set_queue_depths_provider(self, fn: QueueDepths | None) -> None:
        """``fn() -> {"queue name": depth}``, read for every health event."""
        self._health.set_queue_depths_provider(fn)

    def set_run_state_provider(self, fn: RunStateProvider | None) -> None:
        """``fn() -> {"state", "reason", "degraded"}``, read for every health event."""
        self._health.set_run_state_provider(fn)

    def set_host_state_provider(self, fn: RunStateProvider | None) -> None:
        """``fn() -> {"missing": [...], ...}``: the host runtime's gaps, read for every health event."""
        self._health.set_host_state_provider(fn)

    def add_listener(self, fn: Listener) -> None:
        """``fn(event)`` after each event is stored (e.g. the CLI printing alerts)."""
        self._emitter.add_listener(fn)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.transport is not None:
            self.transport.open()
        if self._delivery is not None:
            self._delivery.start()
        self._actions.start()
        self._health.emit()
        self._health.start()

    def emit_health(self, cause: str | None = None) -> None:
        """A health event now (besides the periodic ones); ``cause``: an event the cloud counts (see
        HealthEvent.cause)."""
        self._health.emit(cause)

    def emit_event(self, cls: type[EventBase], **fields: Any) -> bool:
        """Store one event made elsewhere (the fallback's ``cloud`` answers, from its own thread): validated and
        stamped like the sink's own; False when it was invalid or could not be stored (counted either way)."""
        event = self._emitter.build(cls, **fields)
        return event is not None and self._emitter.emit(event) is not None

    def drain(self, timeout_s: float | None = None) -> int:
        """Deliver for up to ``timeout_s`` (default ``drain_timeout_s``); return the events left."""
        if self._delivery is None or self.outbox is None:
            return 0
        timeout = self.cfg.drain_timeout_s if timeout_s is None else timeout_s
        left = self._delivery.drain(timeout)
        if left:
            o = self.outbox.stats()
            log.warning("telemetry: %d events (%d bytes, oldest %.0fs) not delivered within %.0fs; "
                        "they stay in %s for the next start", left, o.bytes, o.oldest_age_s or 0, timeout,
                        self.outbox.path)
        return left

    def close(self) -> None:
        """Stop the threads and release transport and outbox. Call ``drain`` first to deliver what is left."""
        if self._closed:
            return
        self._closed = True
        self._health.stop()
        self._actions.close()
        if self._delivery is not None:
            self._delivery.stop()
        if self.transport is not None:
            self.transport.close()
        if self.outbox is not None:
            self.outbox.close()

    # -- reporting -------------------------------------------------------------------------------
    def degraded(self) -> str | None:
        """None while telemetry works; else why not, one line (e.g. "outbox write failed: database or disk
        is full"). Events are dropped and counted meanwhile; it clears by itself when a write succeeds."""
        return self._failures.reason()

    def degraded_state(self) -> DegradedState:
        """degraded, reason, since (wall clock), last_error; counts are in ``snapshot().write_failed``."""
        return self._failures.state()

    def snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    def outbox_stats(self) -> OutboxStats | None:
        return None if self.outbox is None else self.outbox.stats()

    def _on_action(self, outcome: ActionOutcome) -> None:
        self.stats.action(f"{outcome.action}_{'ok' if outcome.ok else 'failed'}")

    def __enter__(self) -> TelemetryService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_rules(cfg: EdgeInferConfig) -> dict[str, list[RuleConfig]]:
    return {s.id: s.rules for s in cfg.sources if s.rules is not None}
