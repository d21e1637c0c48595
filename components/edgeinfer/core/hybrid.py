"""The run session's hybrid slot: cloud fallback and captures as one sink, rebuilt only when their settings change.

The session holds one ``HybridSlot`` (as it holds the shadow slot) and lists it after the telemetry sink, so a
frame's local result is stored before anything here looks at it. Per frame (``on_result``, the sink thread):

* fallback: a frame in the uncertainty band (or any frame on a degraded backend) is offered to the fallback
  service, which queues it for its worker or counts why not; the answer arrives later as a ``cloud`` event;
* unavailable: while the pipeline waits to restart after a failure (no local model runs) and the source is live,
  ``bridge(source, task)`` gives the session a Bridge (core/fallback/bridge.py) that offers the camera's frames
  with the trigger ``unavailable``, within the same budget, breaker and queue;
* captures: a frame that fired an alert (heard from the telemetry emitter, which runs just before), one in the
  band, or a random sample is queued on disk for labelling; a frame sent to the cloud is captured when the answer
  comes, as ``disagreed`` when the cloud disagreed (else ``uncertain``), with the cloud's detections.

``prepare(cfg)`` builds what ``cfg`` asks for (the clients found by entry point, or injected) and raises
EdgeInferError when it cannot, so the session refuses the configuration as a whole; ``install`` swaps it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .captures.config import CapturesConfig
from .config import EdgeInferConfig
from .fallback.band import trigger, uncertain
from .fallback.bridge import Bridge
from .fallback.config import FallbackConfig
from .sinks.base import RunContext
from .sources import Source
from .types import Frame, FrameResult, TaskOutput

log = logging.getLogger(__name__)
ALERTS_REMEMBERED = 64

if TYPE_CHECKING:  # the event models are built on first use: a run without telemetry never needs them
    from .captures.service import Capturer
    from .captures.uploader import StoreFactory
    from .fallback.client import ClientFactory
    from .fallback.service import FallbackService, Job
    from .telemetry.events import EventBase


@dataclass
class HybridParts:
    fallback_cfg: FallbackConfig
    captures_cfg: CapturesConfig
    fallback: FallbackService | None = None
    capturer: Capturer | None = None

    def start(self) -> None:
        if self.fallback is not None:
            self.fallback.start()
        if self.capturer is not None and self.capturer.uploader is not None:
            self.capturer.uploader.start()

    def close(self) -> None:
        if self.fallback is not None:
            self.fallback.close()
        if self.capturer is not None:
            self.capturer.close()


class HybridSlot:
    """Implements the ``Sink`` port for the session; empty (a no-op) while fallback and captures are off."""

    def __init__(self, telemetry: Callable[[], Any], clients: Mapping[str, ClientFactory] | None = None,
                 stores: Mapping[str, StoreFactory] | None = None) -> None:
        """``telemetry()``: the session's telemetry service now (or None); ``clients``/``stores``: factories by
        endpoint/store type, instead of the installed plugins (tests, hosts with their own)."""
        self._telemetry, self._clients, self._stores = telemetry, clients, stores
        self.parts: HybridParts | None = None
        self._ctx: RunContext | None = None
        self._alerted: dict[tuple[str, int], None] = {}
        self._listening: set[int] = set()

    # -- building ----------------------------------------------------------------------------------
    def prepare(self, cfg: EdgeInferConfig) -> HybridParts | None:
        """What ``cfg`` asks for: the running parts when their settings are unchanged, else new ones (not started)."""
        fb, cap = cfg.fallback, cfg.captures
        if not fb.enabled and not cap.enabled:
            return None
        cur = self.parts
        if cur is not None and cur.fallback_cfg == fb and cur.captures_cfg == cap:
            return cur
        # the services, clients and answer models load only when a configuration turns them on (12 ms of a start)
        from .fallback.client import client_for
        from .fallback.formats import codec
        from .fallback.service import FallbackService
        from .netguard import Outbound

        parts = HybridParts(fb, cap)
        try:
            if fb.enabled:
                assert fb.endpoint is not None  # the schema says so
                outbound = Outbound(hosts=tuple(fb.hosts), setting="fallback.hosts",
                                    scheme_hint="use an https:// endpoint")
                parts.fallback = FallbackService(fb, client_for(fb.endpoint, outbound, self._clients),
                                                 codec(fb.format), self._emit, self._online)
                parts.fallback.listeners.append(self._answered)
            if cap.enabled:
                parts.capturer = self._capturer(cfg, cap)
        except BaseException:
            parts.close()
            raise
        return parts

    def _capturer(self, cfg: EdgeInferConfig, cap: CapturesConfig) -> Capturer:
        from .captures.queue import CaptureQueue
        from .captures.service import Capturer
        from .captures.uploader import Uploader, store_for
        from .netguard import Outbound
        from .paths import ensure_dir

        folder = ensure_dir(cap.dir or cfg.resolved_state_dir() / "captures", "captures.dir", full_ok=True)
        queue = CaptureQueue(folder, cap.max_bytes, cap.max_files)
        uploader = None
        if cap.store is not None:
            schemes = frozenset({"https", "http"} if cap.store.type == "azureblob" else {"https"})
            outbound = Outbound(hosts=tuple(cap.hosts), schemes=schemes, setting="captures.hosts")
            uploader = Uploader(queue, store_for(cap.store, outbound, self._stores), cap.store.prefix,
                                cap.upload_interval_s, cap.timeout_s)
        return Capturer(cap, queue, uploader)

    def install(self, parts: HybridParts | None) -> None:
        old, self.parts = self.parts, parts
        if parts is not None and parts is not old:
            parts.start()
        if old is not None and old is not parts:
            old.close()

    def shutdown(self) -> None:
        """Stop the worker and the uploader (the session stops)."""
        self.install(None)

    @property
    def wants_images(self) -> bool:
        return self.parts is not None

    # -- the sink ----------------------------------------------------------------------------------
    def start(self, ctx: RunContext) -> None:
        self._ctx = ctx
        tel = self._telemetry()
        if tel is not None and id(tel) not in self._listening:
            self._listening.add(id(tel))
            tel.add_listener(self._heard)

    def _heard(self, event: EventBase) -> None:
        from .telemetry.events import AlertEvent

        if isinstance(event, AlertEvent):
            self._alerted[(event.evidence.stream or event.evidence.source, event.evidence.frame)] = None
            while len(self._alerted) > ALERTS_REMEMBERED:
                del self._alerted[next(iter(self._alerted))]

    def on_result(self, result: FrameResult) -> None:
        parts, ctx = self.parts, self._ctx
        if parts is None or ctx is None:
            return
        sent = False
        if parts.fallback is not None:
            parts.fallback.count_frame()
            why = trigger(result, parts.fallback_cfg, ctx.backend.degraded)
            if why is not None:
                sent = parts.fallback.offer(result, why, result.image) == "queued"
        cap = parts.capturer
        if cap is None:
            return
        reason = None
        alerted = (result.stream or result.source, result.index) in self._alerted
        if alerted and cap.cfg.alerts:
            reason = "alert"
        elif cap.cfg.uncertain and uncertain(result, parts.fallback_cfg):
            reason = None if sent else "uncertain"  # captured with the cloud's answer instead
        elif cap.sampled():
            reason = "sample"
        if reason is not None:
            cap.capture(result, result.image, reason, ctx)

    # -- the local model unavailable ---------------------------------------------------------------
    def bridge(self, source: Source, task: str) -> Bridge | None:
        """A Bridge for the restart wait, when the fallback is on with ``on_unavailable`` and ``source`` is live;
        else None (the session just waits)."""
        parts = self.parts
        if parts is None or parts.fallback is None or not parts.fallback_cfg.on_unavailable or not source.live:
            return None
        return Bridge(source, lambda frame: self.offer_unavailable(frame, task))

    def offer_unavailable(self, frame: Frame, task: str) -> bool:
        """Offer a frame no local model could look at (no local result; the cloud event's local part is zero)."""
        parts = self.parts
        if parts is None or parts.fallback is None:
            return False
        parts.fallback.count_frame()
        h, w = frame.image.shape[:2]
        result = FrameResult(frame.source, frame.index, frame.ts, w, h, task, TaskOutput(), {}, frame.image,
                             stream=frame.stream)
        return parts.fallback.offer(result, "unavailable", frame.image) == "queued"

    def _answered(self, job: Job, cloud: TaskOutput | None, agreement: float | None) -> None:
        parts, ctx = self.parts, self._ctx
        if parts is None or parts.capturer is None or ctx is None:
            return
        cap = parts.capturer
        disagreed = agreement is not None and agreement < parts.fallback_cfg.agree_at
        if disagreed and cap.cfg.disagreed:
            cap.capture(job.result, job.result.image, "disagreed", ctx, cloud, agreement)
        elif job.trigger == "uncertain" and cap.cfg.uncertain:
            cap.capture(job.result, job.result.image, "uncertain", ctx, cloud, agreement)

    def close(self, summary: dict[str, Any]) -> None:
        """A pipeline ended: its summary gets the counts (the worker and uploader go on: ``shutdown``)."""
        summary.update(self.state())

    # -- telemetry ---------------------------------------------------------------------------------
    def _emit(self, fields: dict[str, Any]) -> None:
        tel = self._telemetry()
        if tel is not None:
            from .telemetry.events import CloudEvent

            tel.emit_event(CloudEvent, **fields)

    def _online(self) -> bool:
        tel = self._telemetry()
        transport = getattr(tel, "transport", None)
        if transport is None:
            return True
        try:
            return bool(transport.status().connected)
        except Exception:  # a transport's status must not stop the frame path
            return True

    def window(self) -> dict[str, Any]:
        """For each summary window: the fallback's counts over it (they start again)."""
        parts = self.parts
        if parts is None or parts.fallback is None:
            return {}
        return {"fallback": parts.fallback.state(window=True)}

    def state(self) -> dict[str, Any]:
        parts = self.parts
        out: dict[str, Any] = {}
        if parts is not None and parts.fallback is not None:
            out["fallback"] = parts.fallback.state()
        if parts is not None and parts.capturer is not None:
            out["captures"] = parts.capturer.state()
        return out
