"""The run session with the cloud fallback on: the real BlazeFace demo model on the demo frames, its faces inside
a wide uncertainty band, answered by SageMaker (moto over TLS). Every cloud event follows its frame's result
event, linked by frame_source + frame; summaries and health carry the fallback's rate, budget and breaker."""

from __future__ import annotations

import json
from pathlib import Path

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.remote import remote_problems
from edgeinfer.core.session import RunSession
from edgeinfer.core.telemetry.events import parse_event

from .servers import MotoTLS


def config(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], moto: MotoTLS, ca: str,
           events: Path) -> EdgeInferConfig:
    return EdgeInferConfig(
        model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[0])},
        telemetry={"transport": f"file:{events}", "mode": "results"},
        fallback={"enabled": True, "hosts": ["localhost"], "format": "json-b64", "band": {"low": 0.5, "high": 0.99},
                  "endpoint": {"type": "sagemaker", "endpoint_name": "faces", "region": "us-east-1",
                               "endpoint_url": moto.url, "ca_file": ca}})


def test_uncertain_faces_get_a_linked_cloud_answer_and_health_says_so(demo_pkgs, demo_media, moto: MotoTLS, pki,
                                                                     tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    moto.set_endpoint_results([{"detections": []}] * 50)  # the cloud finds nothing: every face disagrees
    svc = RunSession(config(demo_pkgs, demo_media, moto, str(pki.ca), events_file))
    svc.start()
    assert svc.wait(120)
    hybrid = svc._hybrid.parts
    assert hybrid is not None and hybrid.fallback is not None
    assert hybrid.fallback.idle.wait(30)
    status = svc.status()
    svc.stop(drain_timeout_s=10)
    events = [parse_event(line) for line in events_file.read_text().splitlines()]
    results = {(e.source, e.frame): e for e in events if e.type == "result"}  # type: ignore[attr-defined]
    clouds = [e for e in events if e.type == "cloud"]
    assert clouds, "some demo frames hold a face in the band"
    for c in clouds:
        local = results[(c.frame_source, c.frame)]  # type: ignore[attr-defined]
        assert local.ts <= c.ts, "the local result was made first"
        assert c.source == "cloud" and c.ok and c.agreement == 0.0  # type: ignore[attr-defined]
        assert c.local.detections == len(local.detections or [])  # type: ignore[attr-defined]
    fb = status["fallback"]
    assert fb["sent"] == len(clouds) == fb["answered"] and fb["breaker"] == "closed"
    assert fb["disagreed"] == len(clouds) and 0 < fb["rate"] <= 1
    assert fb["budget_left"]["minute"] == 30 - len(clouds)
    health = [e for e in events if e.type == "health"]
    assert health[-1].run is not None and health[-1].run.fallback is not None  # type: ignore[attr-defined]
    summary = json.loads(json.dumps(svc.last_summary, default=str))
    assert summary["fallback"]["sent"] == len(clouds)


def test_a_deployment_may_tune_the_fallback_but_not_point_it_elsewhere(demo_pkgs, demo_media, moto: MotoTLS, pki,
                                                                      tmp_path: Path) -> None:
    base = config(demo_pkgs, demo_media, moto, str(pki.ca), tmp_path / "e.jsonl")
    assert remote_problems({"fallback": {"per_minute": 5, "band": {"low": 0.2, "high": 0.5}}}, base) == []
    other = {"fallback": {"endpoint": {"type": "azureml", "scoring_uri": "https://evil.example/score"}}}
    assert remote_problems(other, base) == ["fallback.endpoint is a local setting: a deployment cannot change it"]
    assert remote_problems({"fallback": {"hosts": ["*"]}}, base) == [
        "fallback.hosts is a local setting: a deployment cannot change it"]
    assert remote_problems({"captures": {"store": {"type": "s3", "bucket": "other", "region": "us-east-1"}}},
                           base) == ["captures.store is a local setting: a deployment cannot change it"]
