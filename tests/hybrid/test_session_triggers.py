"""The run session's other fallback and capture triggers, end to end, with the real SageMaker client against moto's
server over TLS and the real S3 client for captures:

* the local model unavailable: the pipeline restarting after inference failures over a live MJPEG camera; the
  camera's frames still reach the cloud within the budget, as ``cloud`` events with the trigger ``unavailable``;
* captures for a rule's alert and for a cloud answer that disagrees with the local result, uploaded to the
  captures/ prefix with their reason.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import numpy as np

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.session import RunSession
from edgeinfer.core.telemetry.events import parse_event
from tests.faults.stream_servers import MjpegServer

from .servers import MotoTLS


def until(pred: Any, timeout: float = 30.0) -> bool:
    """Poll a condition other threads make true, with a deadline."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if pred():
            return True
        tick.wait(0.02)
    return bool(pred())


def sagemaker(moto: MotoTLS, ca: str, **over: Any) -> dict[str, Any]:
    return {"enabled": True, "hosts": ["localhost"], "format": "json-b64",
            "endpoint": {"type": "sagemaker", "endpoint_name": "faces", "region": "us-east-1",
                         "endpoint_url": moto.url, "ca_file": ca}, **over}


class BrokenRuntime:
    """The backend's runtime failing on every batch while ``broken`` is set, as a lost accelerator does (a runtime
    crash cannot be caused on demand on this CPU; everything around it is real)."""

    def __init__(self, run: Any) -> None:
        self._run, self.broken = run, threading.Event()

    def __call__(self, feeds: dict[str, np.ndarray]) -> Any:
        if self.broken.is_set():
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self._run(feeds)


def test_frames_reach_the_cloud_while_the_local_model_cannot_run(demo_pkgs, moto: MotoTLS, pki,
                                                                 tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    moto.set_endpoint_results([{"detections": [{"label": "face", "score": 0.9, "box": [1, 2, 30, 40]}]}] * 50)
    with MjpegServer(fps=15) as camera:
        cfg = EdgeInferConfig(
            model={"path": str(demo_pkgs[0])}, source={"uri": camera.url},
            telemetry={"transport": f"file:{events_file}", "mode": "results"},
            fallback=sagemaker(moto, str(pki.ca), per_minute=3, band={"low": 0.98, "high": 0.99}))
        svc = RunSession(cfg, restart_backoff_s=(1.5, 1.5))
        svc.start()
        try:
            assert until(lambda: svc.stats().get("frames", 0) >= 3), "the camera's frames are inferred"
            assert svc._parts is not None
            backend = svc._parts.model.backend
            runtime = BrokenRuntime(backend.run)
            backend.run = runtime  # type: ignore[method-assign]
            runtime.broken.set()

            def fallback() -> dict[str, Any]:
                return svc.status().get("fallback") or {}

            assert until(lambda: fallback().get("triggered", 0) > 3), "the camera's frames were offered"
            assert until(lambda: fallback().get("answered", 0) == 3)
            during = fallback()
            runtime.broken.clear()  # the runtime is back: the next restart infers again
            assert until(lambda: svc.state()[0] == "running")
            seen = svc.stats().get("frames", 0)
            assert until(lambda: svc.stats().get("frames", 0) > seen + 2), "inference resumed after the outage"
        finally:
            svc.stop(drain_timeout_s=10)
    assert during["sent"] == 3 and during["skipped"].get("budget", 0) >= 1, during
    assert during["breaker"] == "closed" and during["budget_left"]["minute"] == 0
    events = [parse_event(line) for line in events_file.read_text().splitlines()]
    clouds = [e for e in events if e.type == "cloud" and e.trigger == "unavailable"]  # type: ignore[attr-defined]
    results = {(e.source, e.frame) for e in events if e.type == "result"}  # type: ignore[attr-defined]
    assert len(clouds) == 3
    for c in clouds:
        assert c.ok and c.agreement is None and c.local.detections == 0  # type: ignore[attr-defined]
        assert c.detections[0].label == "face"  # type: ignore[attr-defined]
        assert (c.frame_source, c.frame) not in results, "no local result exists for it"  # type: ignore[attr-defined]
    health = [e for e in events if e.type == "health"]
    assert any(h.run is not None and h.run.state == "restarting" for h in health)  # type: ignore[attr-defined]


def test_alert_and_disagreed_frames_are_captured_and_uploaded(demo_pkgs, demo_media, moto: MotoTLS, pki,
                                                              tmp_path: Path) -> None:
    """A rule that fires captures its frame as 'alert'; a cloud answer below agree_at captures the frame as
    'disagreed' with the cloud's detections; both reach the captures/ prefix."""
    s3 = boto3.client("s3", endpoint_url=moto.url, verify=str(pki.ca), region_name="us-east-1")
    s3.create_bucket(Bucket="artifacts")
    events_file = tmp_path / "events.jsonl"
    moto.set_endpoint_results([{"detections": []}] * 50)  # the cloud sees no face: every local face disagrees
    cfg = EdgeInferConfig(
        model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[0])},
        telemetry={"transport": f"file:{events_file}", "mode": "results"},
        rules=[{"name": "face-seen", "when": {"label": "face", "min_score": 0.5}}],
        fallback=sagemaker(moto, str(pki.ca), band={"low": 0.5, "high": 0.99}),
        captures={"enabled": True, "sample_rate": 0.0, "upload_interval_s": 0.2, "dir": str(tmp_path / "cap"),
                  "hosts": ["localhost"],
                  "store": {"type": "s3", "bucket": "artifacts", "region": "us-east-1", "endpoint_url": moto.url,
                            "ca_file": str(pki.ca)}})
    svc = RunSession(cfg)
    svc.start()
    try:
        assert svc.wait(120)
        parts = svc._hybrid.parts
        assert parts is not None and parts.fallback is not None and parts.capturer is not None
        assert parts.fallback.idle.wait(30)
        capturer = parts.capturer
        assert until(lambda: capturer.state()["queued"] == 0 and capturer.state()["uploaded"] > 0, 60)
        state = capturer.state()
    finally:
        svc.stop(drain_timeout_s=10)
    events = [parse_event(line) for line in events_file.read_text().splitlines()]
    alerted = {(e.evidence.source, e.evidence.frame) for e in events if e.type == "alert"}  # type: ignore[attr-defined]
    disagreed = {(e.frame_source, e.frame) for e in events  # type: ignore[attr-defined]
                 if e.type == "cloud" and e.agreement is not None and e.agreement < 0.8}  # type: ignore[attr-defined]
    assert alerted and disagreed, "the demo frames hold faces the rule fires on and the cloud disagrees with"
    assert state["captured"] == {"alert": len(alerted), "disagreed": len(disagreed)}, state
    assert state["uploaded"] == len(alerted) + len(disagreed)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]]
    lines = [json.loads(s3.get_object(Bucket="artifacts", Key=k)["Body"].read())["edgeinfer-metadata"]
             for k in keys if k.endswith(".manifest")]
    assert Counter(m["reason"] for m in lines) == Counter(alert=len(alerted), disagreed=len(disagreed))
    for m in lines:
        frame = (m["frame"]["source"], m["frame"]["index"])
        assert frame in (alerted if m["reason"] == "alert" else disagreed)
        if m["reason"] == "disagreed":
            assert m["cloud"] == [] and m["agreement"] < 0.8 and m["local"], m
    assert len(keys) == 2 * len(lines) and all(k.startswith("captures/") for k in keys)
