"""docs/grafana/edgeinfer-device.json: valid JSON, and every metric and label its queries use exists in the
exposition the device's own collector writes (core/serve/metrics.py, read back with prometheus_client's parser).

The collector is driven with every optional family present (a live outbox and transport, probation, a
rollback, a shadow candidate); the session and telemetry service are stand-ins that answer what a RunSession
and a TelemetryService answer, the collector, recorder and exposition are the real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edgeinfer.core.serve.config import ServeConfig
from edgeinfer.core.serve.metrics import registry_for
from edgeinfer.core.serve.recorder import Recorder
from edgeinfer.core.telemetry.events import AlertEvent, Evidence
from edgeinfer.core.telemetry.record import OutboxStats
from edgeinfer.core.telemetry.stats import Stats

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "edgeinfer-device.json"
SUFFIXES = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
            "info": ["_info"], "gauge": [""], "summary": ["", "_sum", "_count"]}
#: labels Prometheus adds at scrape time, and PromQL's own
SCRAPE_LABELS = {"instance", "job", "le"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "without", "on", "ignoring", "max", "min",
                "avg", "count", "topk", "bottomk", "and", "or", "unless", "bool"}


class _Transport:
    def describe(self) -> str:
        return "mqtt5://iot.example:8883"

    def status(self) -> Any:
        return SimpleNamespace(connected=True, error=None)


class _Telemetry:
    def __init__(self) -> None:
        self.stats = Stats()
        self.transport = _Transport()
        self.listeners: list[Any] = []

    def add_listener(self, fn: Any) -> None:
        self.listeners.append(fn)

    def snapshot(self) -> Any:
        return self.stats.snapshot()

    def outbox_stats(self) -> OutboxStats:
        return OutboxStats(depth=3, bytes=1200, oldest_age_s=4.0, evicted={"result": 2}, rejected=0)


class _Session:
    config = SimpleNamespace(source=SimpleNamespace(fps=None))

    def __init__(self) -> None:
        self.telemetry = _Telemetry()

    def state(self) -> tuple[str, str | None]:
        return "running", None

    def status(self) -> dict[str, Any]:
        return {"state": "running", "degraded": ["backend fell back to CPU"],
                "model": {"name": "faces", "version": "2.0.0", "sha256": "0" * 64, "task": "detection"},
                "backend": {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "degraded": True},
                "probation": {"model_version": "2.0.0", "previous_version": "1.0.0", "results": 12},
                "rollback": {"from": "3.0.0", "to": "2.0.0", "reason": "latency", "at": "2024-01-01T00:00:00Z"},
                "shadow": {"model_version": "3.0.0", "frames": 10, "agreement": 0.9,
                           "labels": {"face": {"precision": 0.9, "recall": 0.8}}}}

    def stats(self) -> dict[str, Any]:
        return {"frames": 10, "bad_frames": 0, "dropped": 1, "detections": {"face": 4}}

    def snapshot(self) -> bytes:
        return b""


def exposition() -> dict[str, set[str]]:
    """Sample name -> the label names it carries, as the families the device declares would write them."""
    session = _Session()
    rec = Recorder()
    rec.telemetry = lambda: session.telemetry
    rec.start(None)  # type: ignore[arg-type]  # the recorder reads only its telemetry service at start
    frame = SimpleNamespace(timings_ms={"preprocess": 1.0, "infer": 5.0, "decode": 1.0, "sinks": 0.5, "total": 9.0},
                            output=SimpleNamespace(detections=[SimpleNamespace(label="face")]))
    rec.on_result(frame)  # type: ignore[arg-type]
    rec.close({})
    alert = AlertEvent(device="cam-1", model_version="2.0.0", rule="face-seen", evidence=Evidence(
        source="cam", frame=1, frame_ts=0.0, since_ts=0.0, matched=1, considered=1, count=1, max_score=0.9))
    for listener in session.telemetry.listeners:
        listener(alert)
    text = generate_latest(registry_for(lambda: session, rec, ServeConfig())).decode()
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        labels = {k for s in fam.samples for k in s.labels}
        for suffix in SUFFIXES.get(fam.type, [""]):
            out.setdefault(fam.name + suffix, set()).update(labels)
    return out


def _exprs(dash: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if t.get("expr")]
    found += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    return found


def test_the_dashboard_is_json_grafana_can_import() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "edgeinfer-device" and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) == len(dash["panels"]) >= 10
    for p in dash["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"], p["title"]
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource", "instance"]


def test_every_metric_and_label_the_queries_use_is_in_the_devices_exposition() -> None:
    metrics = exposition()
    assert "edgeinfer_stage_latency_seconds_bucket" in metrics and "edgeinfer_outbox_events" in metrics
    used: set[str] = set()
    for expr in _exprs(json.loads(DASHBOARD.read_text())):
        names = set(re.findall(r"\b((?:edgeinfer|process)_[a-z0-9_]+)\b", expr))
        assert names, expr
        for name in names:
            assert name in metrics, f"{name} is not in the device's /metrics ({expr})"
        used |= names
        known = set().union(*(metrics[n] for n in names)) | SCRAPE_LABELS
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in known, f"{label!r} is no label of {sorted(names)} ({expr})"
        for label in re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr):
            assert label in known, f"{label!r} is no label of {sorted(names)} ({expr})"
        for label in re.findall(r"\{\{(\w+)\}\}", json.dumps(expr)):
            assert label in known, label
    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    for p in panels.values():  # legends name labels the series have
        for t in p["targets"]:
            names = set(re.findall(r"\b((?:edgeinfer|process)_[a-z0-9_]+)\b", t["expr"]))
            known = set().union(*(metrics[n] for n in names)) | SCRAPE_LABELS
            for label in re.findall(r"\{\{(\w+)\}\}", t.get("legendFormat", "")):
                assert label in known, (p["title"], label)
    # the families an operator asked for are on it: fps, latency, detections, outbox, transport, degraded
    for want in ("edgeinfer_fps", "edgeinfer_stage_latency_seconds_bucket", "edgeinfer_detections_total",
                 "edgeinfer_outbox_events", "edgeinfer_transport_up", "edgeinfer_degraded", "edgeinfer_model_info",
                 "edgeinfer_rule_firings_total", "edgeinfer_telemetry_delivery_latency_seconds_bucket"):
        assert want in used, want


def test_the_check_can_fail() -> None:
    metrics = exposition()
    assert "edgeinfer_fps_total" not in metrics and "edgeinfer_frames" not in metrics  # counters are _total
    assert {"stage", "le"} <= metrics["edgeinfer_stage_latency_seconds_bucket"]
    assert metrics["edgeinfer_rule_firings_total"] == {"rule", "severity"}
    assert "label" not in metrics["edgeinfer_outbox_events"]
