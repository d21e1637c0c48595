"""``/metrics``: a Prometheus collector that reads the run session at scrape time.

No global registry and no metric objects updated in the frame path: each scrape asks the session (``status()``,
``stats()``), its telemetry service and the Recorder, and turns the answers into metric families. Names follow
Prometheus' conventions: ``edgeinfer_`` prefix, base units in the name (seconds, bytes), ``_total`` counters,
``_info`` metrics carrying strings as labels. See docs/observability.md for the table.

Frame counters and latency histograms count the current pipeline (as summary.json does) and start again from
zero when a pipeline is rebuilt (a configuration change or a restart after an error); rule firings and
telemetry counters count since the process or the telemetry service started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from ..redact import redact
from .config import ServeConfig
from .health import Session, liveness, readiness
from .recorder import LATENCY_BUCKETS_S, Recorder

log = logging.getLogger(__name__)
STATES = ("starting", "running", "waiting", "restarting", "finished", "error", "stopped")
STREAM_STATES = ("running", "waiting", "retrying", "finished", "error")


def _buckets(bounds: Iterable[float], counts: Iterable[int]) -> list[tuple[str, float]]:
    """Non-cumulative counts per bound (+ the overflow) -> Prometheus' cumulative ``le`` buckets."""
    out, total = [], 0
    for bound, n in zip([*bounds, float("inf")], counts, strict=True):
        total += n
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
    return out


def _str(value: Any) -> str:
    return "" if value is None else str(value)


class SessionCollector(Collector):
    def __init__(self, session: Callable[[], Session | None], recorder: Recorder, cfg: ServeConfig) -> None:
        self._session = session
        self._rec = recorder
        self._cfg = cfg

    def collect(self) -> Iterator[Any]:
        session = self._session()
        yield from self._health(session)
        if session is None:
            return
        status = session.status()
        stats = session.stats()
        yield from self._run(status)
        yield from self._frames(stats)
        yield from self._streams(stats.get("streams") or {})
        yield from self._model(status, stats)
        yield from self._gate(status)
        live = session.telemetry
        yield from self._telemetry(live if live is not None else self._rec.last_telemetry(), live is not None)

    # -- families ----------------------------------------------------------------------------------
    def _health(self, session: Session | None) -> Iterator[Any]:
        alive, ready = liveness(session, self._rec, self._cfg), readiness(session, self._rec, self._cfg)
        yield GaugeMetricFamily("edgeinfer_healthy", "1 when /healthz answers 200 (the run is supervised, not "
                                "stalled)", value=int(alive.ok))
        yield GaugeMetricFamily("edgeinfer_ready", "1 when /readyz answers 200 (a recent frame, or the source is "
                                "waiting)", value=int(ready.ok))

    def _run(self, status: dict[str, Any]) -> Iterator[Any]:
        g = GaugeMetricFamily("edgeinfer_run_state", "1 for the state the run is in", labels=["state"])
        for s in STATES:
            g.add_metric([s], int(status.get("state") == s))
        yield g
        degraded = status.get("degraded") or []
        yield GaugeMetricFamily("edgeinfer_degraded", "1 while the run does not do all it should (backend fallback, "
                                "telemetry or sinks failing)", value=int(bool(degraded)))
        info = InfoMetricFamily("edgeinfer_degraded", "Why the run is degraded, one series per reason",
                                labels=["reason"])
        for reason in degraded:
            info.add_metric([_str(reason)], {})
        yield info

    def _frames(self, stats: dict[str, Any]) -> Iterator[Any]:
        for name, key, doc in (("edgeinfer_frames", "frames", "Frames inferred by the current pipeline"),
                               ("edgeinfer_bad_frames", "bad_frames", "Frames skipped as unreadable or malformed"),
                               ("edgeinfer_dropped_frames", "dropped", "Stale frames a live source dropped")):
            yield CounterMetricFamily(name, doc, value=float(stats.get(key) or 0))
        yield GaugeMetricFamily("edgeinfer_fps", "Frames inferred per second over the last 10 s",
                                value=round(self._rec.fps(), 3))
        det = CounterMetricFamily("edgeinfer_detections", "Detections by label (current pipeline)",
                                  labels=["label"])
        for label, n in sorted((stats.get("detections") or {}).items()):
            det.add_metric([_str(label)], float(n))
        yield det
        h = HistogramMetricFamily("edgeinfer_stage_latency_seconds", "Per-stage latency of each frame (total: "
                                  "capture to result)", labels=["stage"])
        for stage, hist in self._rec.histograms().items():
            h.add_metric([stage], _buckets(LATENCY_BUCKETS_S, hist.counts), hist.sum)
        yield h
        fired = CounterMetricFamily("edgeinfer_rule_firings", "Alerts raised by rules", labels=["rule", "severity"])
        for (rule, severity), n in sorted(self._rec.firings().items()):
            fired.add_metric([_str(rule), _str(severity)], float(n))
        yield fired

    def _streams(self, streams: dict[str, Any]) -> Iterator[Any]:
        """Per stream of ``sources:`` (nothing with one ``source:``): its state, frames, drops and detections."""
        if not streams:
            return
        state = GaugeMetricFamily("edgeinfer_stream_state", "1 for the state each stream is in",
                                  labels=["stream", "state"])
        counters = {key: CounterMetricFamily(f"edgeinfer_stream_{name}", doc, labels=["stream"]) for key, name, doc in (
            ("frames", "frames", "Frames of the stream inferred by the current pipeline"),
            ("dropped", "dropped_frames", "Stale frames of the stream replaced before inference"),
            ("bad", "bad_frames", "Frames of the stream skipped as unreadable or malformed"),
            ("retries", "retries", "Times the stream's source was opened again after a failure"))}
        det = CounterMetricFamily("edgeinfer_stream_detections", "Detections by stream and label (current pipeline)",
                                  labels=["stream", "label"])
        lat = GaugeMetricFamily("edgeinfer_stream_latency_seconds", "Capture-to-result latency of the stream's "
                                "recent frames", labels=["stream", "quantile"])
        for sid, st in streams.items():
            for s in STREAM_STATES:
                state.add_metric([sid, s], int(st.get("state") == s))
            for key, fam in counters.items():
                fam.add_metric([sid], float(st.get(key) or 0))
            for label, n in sorted((st.get("detections") or {}).items()):
                det.add_metric([sid, _str(label)], float(n))
            for q, key in (("0.5", "p50"), ("0.95", "p95")):
                if st.get("latency_ms"):
                    lat.add_metric([sid, q], st["latency_ms"][key] / 1e3)
        yield state
        yield from counters.values()
        yield det
        yield lat

    def _model(self, status: dict[str, Any], stats: dict[str, Any]) -> Iterator[Any]:
        # after the run stopped, the last pipeline's summary still says what ran
        model, backend = status.get("model") or stats.get("model"), status.get("backend") or stats.get("backend")
        if model:
            yield InfoMetricFamily("edgeinfer_model", "The model that runs",
                                   value={k: _str(model.get(k)) for k in ("name", "version", "sha256", "task")})
        if backend:
            yield InfoMetricFamily("edgeinfer_backend", "What actually runs the model",
                                   value={k: _str(backend.get(k)) for k in ("backend", "device", "precision")})
            yield GaugeMetricFamily("edgeinfer_backend_degraded", "1 when the backend fell back from what was asked "
                                    "(the reason: edgeinfer_degraded_info)", value=int(bool(backend.get("degraded"))))

    def _gate(self, status: dict[str, Any]) -> Iterator[Any]:
        probation = status.get("probation")
        g = GaugeMetricFamily("edgeinfer_probation_active", "1 while a new model is on probation",
                              labels=["model_version", "previous_version"])
        if probation:
            g.add_metric([_str(probation.get("model_version")), _str(probation.get("previous_version"))], 1)
            yield g
            yield GaugeMetricFamily("edgeinfer_probation_results", "Results the model on probation was judged on "
                                    "so far", value=float(probation.get("results") or 0))
        else:
            g.add_metric(["", ""], 0)
            yield g
        rollback = status.get("rollback")
        if rollback:
            yield InfoMetricFamily("edgeinfer_rollback", "The latest rollback by the health gate",
                                   value={"from": _str(rollback.get("from")), "to": _str(rollback.get("to")),
                                          "reason": _str(rollback.get("reason")), "at": _str(rollback.get("at"))})
        shadow = status.get("shadow")
        if shadow:
            version = _str(shadow.get("model_version"))
            yield _one(CounterMetricFamily, "edgeinfer_shadow_frames", "Frames the shadow candidate was compared on",
                       version, shadow.get("frames"))
            if shadow.get("agreement") is not None:
                yield _one(GaugeMetricFamily, "edgeinfer_shadow_agreement_ratio", "F1 agreement of the shadow "
                           "candidate with the active model", version, shadow.get("agreement"))
            for kind in ("precision", "recall"):
                fam = GaugeMetricFamily(f"edgeinfer_shadow_{kind}_ratio", f"Shadow candidate's {kind} against the "
                                        "active model, by label", labels=["model_version", "label"])
                for label, t in sorted((shadow.get("labels") or {}).items()):
                    if t.get(kind) is not None:
                        fam.add_metric([version, _str(label)], float(t[kind]))
                yield fam

    def _telemetry(self, service: Any, live: bool) -> Iterator[Any]:
        """The service's counters; its outbox and transport while it is open (after a stop: the counters only)."""
        if service is None:
            return
        snap = service.snapshot()
        yield CounterMetricFamily("edgeinfer_telemetry_sent_events", "Events the transport acknowledged",
                                  value=float(snap.sent_events))
        yield CounterMetricFamily("edgeinfer_telemetry_sent_bytes", "Payload bytes the transport acknowledged",
                                  value=float(snap.sent_bytes))
        yield CounterMetricFamily("edgeinfer_telemetry_write_failed_events", "Events dropped: the outbox could not "
                                  "store them (a full or failing disk)", value=float(snap.write_failed))
        lat = service.stats.delivery_latency()
        h = HistogramMetricFamily("edgeinfer_telemetry_delivery_latency_seconds", "How long delivered events "
                                  "waited in the outbox (stored -> acknowledged)")
        h.add_metric([], _buckets(lat.bounds, lat.counts), lat.sum)
        yield h
        if not live:
            return
        o = service.outbox_stats()
        if o is not None:
            yield GaugeMetricFamily("edgeinfer_outbox_events", "Events stored and not yet delivered", value=o.depth)
            yield GaugeMetricFamily("edgeinfer_outbox_bytes", "Bytes the outbox holds", value=o.bytes)
            yield GaugeMetricFamily("edgeinfer_outbox_oldest_event_age_seconds", "Age of the oldest undelivered "
                                    "event (0 when none)", value=o.oldest_age_s or 0.0)
            ev = CounterMetricFamily("edgeinfer_outbox_evicted_events", "Events evicted to make room, by type",
                                     labels=["type"])
            for typ, n in sorted(o.evicted.items()):
                ev.add_metric([typ], float(n))
            yield ev
            yield CounterMetricFamily("edgeinfer_outbox_rejected_events", "Events the transport refused for good",
                                      value=float(o.rejected))
        transport = getattr(service, "transport", None)
        if transport is not None:
            up = GaugeMetricFamily("edgeinfer_transport_up", "1 while the telemetry transport is connected",
                                   labels=["transport"])
            up.add_metric([redact(transport.describe())], int(transport.status().connected))
            yield up


def _one(kind: Any, name: str, doc: str, version: str, value: Any) -> Any:
    fam = kind(name, doc, labels=["model_version"])
    fam.add_metric([version], float(value or 0))
    return fam


def registry_for(session: Callable[[], Session | None], recorder: Recorder, cfg: ServeConfig) -> CollectorRegistry:
    """A registry of its own (never the global one): the session's metrics, plus the process' (CPU, memory)."""
    from prometheus_client import ProcessCollector

    reg = CollectorRegistry(auto_describe=False)
    reg.register(SessionCollector(session, recorder, cfg))
    ProcessCollector(registry=reg)
    return reg
