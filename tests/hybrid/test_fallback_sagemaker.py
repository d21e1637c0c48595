"""Cloud fallback to a SageMaker real-time endpoint: the real boto3 sagemaker-runtime client, through netguard, to
moto's server over TLS (answers set through moto's results API), with the network failing on purpose.

moto's server reads every request body as UTF-8, so a raw JPEG body answers 500 there: these tests send the
``json-b64`` format (the JPEG base64 in JSON, a documented format); the default ``image/jpeg`` body is exercised
against the Azure ML scoring server (test_fallback_azureml.py)."""

from __future__ import annotations

from typing import Any

import pytest

from edgeinfer.core.fallback.client import client_for
from edgeinfer.core.fallback.config import FallbackConfig
from edgeinfer.core.fallback.formats import codec
from edgeinfer.core.fallback.service import FallbackService
from edgeinfer.core.netguard import Outbound
from edgeinfer.core.telemetry.events import CloudEvent

from .frames import answer, result
from .servers import MotoTLS


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def fallback_cfg(moto: MotoTLS, pki_ca: str, **over: Any) -> FallbackConfig:
    return FallbackConfig.model_validate({
        "enabled": True, "hosts": ["localhost"], "format": "json-b64", "band": {"low": 0.3, "high": 0.6},
        "endpoint": {"type": "sagemaker", "endpoint_name": "faces", "region": "us-east-1",
                     "endpoint_url": moto.url, "ca_file": pki_ca}, **over})


def service(cfg: FallbackConfig, online: list[bool] | None = None, clock: Clock | None = None
            ) -> tuple[FallbackService, list[dict[str, Any]]]:
    assert cfg.endpoint is not None
    events: list[dict[str, Any]] = []
    outbound = Outbound(hosts=tuple(cfg.hosts), setting="fallback.hosts")
    flag = online if online is not None else [True]
    svc = FallbackService(cfg, client_for(cfg.endpoint, outbound), codec(cfg.format), events.append,
                          online=lambda: flag[0], clock=clock or Clock())
    svc.start()
    return svc, events


def offer(svc: FallbackService, index: int, *scores: float) -> str:
    r = result(index, *scores)
    svc.count_frame()
    return svc.offer(r, "uncertain", r.image)


def test_an_uncertain_frame_is_answered_by_sagemaker_as_a_linked_cloud_event(moto: MotoTLS, pki) -> None:
    cfg = fallback_cfg(moto, str(pki.ca))
    moto.set_endpoint_results([answer((10, 10, 40, 50), (200, 10, 230, 50))])
    svc, events = service(cfg)
    try:
        assert offer(svc, 7, 0.45) == "queued"
        assert svc.idle.wait(20)
    finally:
        svc.close()
    assert moto.requests == [("POST", "/endpoints/faces/invocations")], "through netguard to the one endpoint"
    (ev,) = events
    event = CloudEvent.model_validate({"device": "dev-1", "model_version": "1.0.0", **ev})
    assert (event.source, event.frame_source, event.frame, event.endpoint) == ("cloud", "cam0", 7, "sagemaker")
    assert event.ok and event.latency_ms > 0 and event.trigger == "uncertain"
    assert [d.box for d in event.detections or []] == [(10, 10, 40, 50), (200, 10, 230, 50)]
    assert event.agreement == pytest.approx(2 / 3, abs=1e-3), "the local face matches one of the cloud's two"
    state = svc.state()
    assert (state["sent"], state["answered"], state["failed"], state["breaker"]) == (1, 1, 0, "closed")
    assert state["rate"] == 1.0 and state["budget_left"]["minute"] == cfg.per_minute - 1


def test_the_budget_caps_requests_per_minute_and_refills(moto: MotoTLS, pki) -> None:
    clock = Clock()
    moto.set_endpoint_results([answer((10, 10, 40, 50))] * 5)
    svc, events = service(fallback_cfg(moto, str(pki.ca), per_minute=2, per_day=3), clock=clock)
    try:
        outcomes = [offer(svc, i, 0.4) for i in range(4)]
        assert svc.idle.wait(20)
        assert outcomes.count("budget") == 2 and outcomes.count("queued") == 2
        clock.t += 61  # a minute later the minute budget is back, but only one of the day's is left
        assert [offer(svc, 10 + i, 0.4) for i in range(2)] == ["queued", "budget"]
        assert svc.idle.wait(20)
        state = svc.state()
    finally:
        svc.close()
    assert len(moto.requests) == 3 == len(events)
    assert state["skipped"] == {"budget": 3} and state["budget_left"] == {"minute": 1, "day": 0}


def test_failures_open_the_breaker_and_a_trial_after_the_cooldown_closes_it(moto: MotoTLS, pki) -> None:
    clock = Clock()
    cfg = fallback_cfg(moto, str(pki.ca), breaker_failures=2, breaker_cooldown_s=30, timeout_s=1)
    moto.set_endpoint_results([answer((10, 10, 40, 50))] * 3)
    svc, events = service(cfg, clock=clock)
    try:
        moto.stop()  # the network fails: connections refused
        for i in range(2):
            assert offer(svc, i, 0.4) == "queued"
            assert svc.idle.wait(20)
        assert svc.state()["breaker"] == "open"
        assert offer(svc, 2, 0.4) == "breaker", "an open breaker sends nothing"
        moto.start()
        clock.t += 31
        assert svc.breaker.state == "half_open"
        assert offer(svc, 3, 0.4) == "queued"  # the one trial
        assert svc.idle.wait(20)
        state = svc.state()
    finally:
        svc.close()
    assert [e["ok"] for e in events] == [False, False, True]
    assert "unreachable" in events[0]["error"]
    assert state["breaker"] == "closed" and state["breaker_opened"] == 1
    assert state["failed"] == 2 and state["skipped"] == {"breaker": 1}


def test_a_slow_endpoint_times_out_without_holding_the_frame_path(moto: MotoTLS, pki) -> None:
    moto.delay_s = 2.0
    svc, events = service(fallback_cfg(moto, str(pki.ca), timeout_s=0.3, queue_size=1))
    try:
        assert offer(svc, 1, 0.4) == "queued"
        assert offer(svc, 2, 0.4) == "busy", "one in flight fills a queue of one: the next frame is skipped at once"
        assert svc.idle.wait(20)
    finally:
        svc.close()
    assert events[0]["ok"] is False and "timeout" in events[0]["error"].lower()
    assert events[0]["latency_ms"] < 1500, "the request gave up at its time limit, not when the endpoint answered"


def test_offline_frames_are_skipped_and_counted_not_sent(moto: MotoTLS, pki) -> None:
    online = [False]
    svc, events = service(fallback_cfg(moto, str(pki.ca)), online=online)
    try:
        assert [offer(svc, i, 0.4) for i in range(3)] == ["offline"] * 3
        state = svc.state()
    finally:
        svc.close()
    assert moto.requests == [] and events == []
    assert state["skipped"] == {"offline": 3} and state["budget_left"]["minute"] == 30, "no budget spent"


def test_an_endpoint_outside_the_hosts_is_refused_before_any_request(moto: MotoTLS, pki) -> None:
    cfg = fallback_cfg(moto, str(pki.ca), hosts=["*.amazonaws.com"])
    svc, events = service(cfg)
    try:
        offer(svc, 1, 0.4)
        assert svc.idle.wait(20)
    finally:
        svc.close()
    assert moto.requests == []
    assert events[0]["ok"] is False and "not in fallback.hosts" in events[0]["error"]
