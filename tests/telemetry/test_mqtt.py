"""The outbox + MQTT5 transport against a real Mosquitto, watched by an independent paho client."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from edgeinfer.core.telemetry.service import TelemetryService

from .conftest import ServiceFactory
from .mosquitto import Mosquitto, Received, Subscriber, seqs, wait_until
from .synthetic import detection, frame

Pred = Callable[[list[Received]], bool]
DOOR = [{"name": "door", "when": {"label": "person", "min_count": 2}, "over": {"frames": 2},
         "actions": [{"type": "alert"}, {"type": "local_topic", "topic": "site/door"}]}]


def has_seqs(event_type: str, last: int) -> Pred:
    want = set(range(1, last + 1))
    return lambda rs: want <= {e["seq"] for r in rs for e in r.events() if e["type"] == event_type}


def feed(service: TelemetryService, start: int, count: int, fps: float = 0.0) -> None:
    """Frames ``start..start+count``; two people on every 10th-11th frame (the door rule fires)."""
    t0 = time.monotonic()
    for i in range(start, start + count):
        people = 2 if i % 10 in (0, 1) else 1
        service.sink.on_result(frame(i, 1_700_000_000 + i / 15, [detection("person", 0.8)] * people))
        if fps and (pause := t0 + (i - start + 1) / fps - time.monotonic()) > 0:
            time.sleep(pause)  # frame pacing: a camera's rate, not synchronisation


def test_events_arrive_with_topics_content_type_and_properties(broker: Mosquitto, subscriber: Subscriber,
                                                               make_service: ServiceFactory) -> None:
    service = make_service(broker.uri(), DOOR, mode="results")
    feed(service, 0, 20)
    assert service.drain(10) == 0
    assert subscriber.wait_for(has_seqs("result", 20), 10)
    assert subscriber.wait_for(lambda rs: any(r.topic == "site/door" for r in rs), 10)
    by_topic = {r.topic: r for r in subscriber.received}
    assert set(by_topic) == {"edgeinfer/dev-1/result", "edgeinfer/dev-1/alert", "edgeinfer/dev-1/health", "site/door"}
    r = by_topic["edgeinfer/dev-1/result"]
    assert r.content_type == "application/json"
    assert r.user_properties == {"type": "result", "model_version": "1.2.0", "schema": "1", "count": "1"}
    cloud, local = by_topic["edgeinfer/dev-1/alert"].events()[0], by_topic["site/door"].events()[0]
    assert cloud == local and cloud["rule"] == "door"
    assert seqs(subscriber.events(), "alert") == [1, 2]


def test_broker_stopped_for_seconds_then_restarted_loses_nothing(broker: Mosquitto, subscriber: Subscriber,
                                                                 make_service: ServiceFactory) -> None:
    service = make_service(broker.uri(), DOOR, mode="results")
    feed(service, 0, 60, fps=60)
    assert subscriber.wait_for(has_seqs("result", 30), 10)  # delivery is under way
    broker.stop()
    assert wait_until(lambda: not service.transport.status().connected, 5)  # type: ignore[union-attr]
    t_down = time.monotonic()
    feed(service, 60, 150, fps=50)  # three seconds of frames with the broker down
    assert service.outbox is not None and service.outbox.depth >= 140
    assert "refused the TCP connection" in (service.transport.status().error or "")  # type: ignore[union-attr]
    broker.start()
    down_s = time.monotonic() - t_down
    feed(service, 210, 60, fps=60)
    service.sink.close({})
    assert service.drain(20) == 0
    assert subscriber.wait_for(has_seqs("result", 270), 15)
    events = subscriber.events()
    assert seqs(events, "result") == list(range(1, 271))  # gap-free after dedupe by id
    assert seqs(events, "alert") == list(range(1, 28))  # frames 0-1, 10-11, ...: one alert per 10 frames
    assert down_s >= 3.0


def test_json_array_batches_with_gzip(broker: Mosquitto, subscriber: Subscriber,
                                      make_service: ServiceFactory) -> None:
    service = make_service(broker.uri(), mode="results", batch=True, gzip=True, max_batch_events=40, start=False)
    feed(service, 0, 200)  # a backlog: delivery starts after it (live, batches hold what has accumulated)
    service.start()
    assert service.drain(10) == 0
    assert subscriber.wait_for(has_seqs("result", 200), 10)
    batches = [r for r in subscriber.received if r.topic.endswith("/result")]
    assert all(r.user_properties["content-encoding"] == "gzip" for r in batches)
    assert all(int(r.user_properties["count"]) == len(r.events()) <= 40 for r in batches)
    assert [len(r.events()) for r in batches] == [40] * 5
    snap = service.snapshot()
    assert snap.sent_bytes < snap.results_bytes / 5  # gzip pays (about 13 % here)


def test_refused_oversize_and_malformed_events_are_clear_errors_and_the_rest_flows(
        tmp_path: Path, make_service: ServiceFactory, errors: Callable[[], list[str]]) -> None:
    acl = "topic read #\ntopic write edgeinfer/#\n"  # site/forbidden is not writable
    broker = Mosquitto(tmp_path / "acl-broker", acl=acl).start()
    sub = Subscriber(broker.port).start()
    try:
        rules = [{"name": "door", "when": {"label": "person", "min_count": 2}, "over": {"frames": 1},
                  "actions": [{"type": "alert"}, {"type": "local_topic", "topic": "site/forbidden"}]}]
        service = make_service(broker.uri(), rules, mode="results")
        service.sink.on_result(frame(0, 0.0, [detection()]))
        service.sink.on_result(frame(1, 0.1, [detection("person", math.nan)]))  # malformed
        crowd = [detection(f"person-{'x' * 40}-{k}") for k in range(2000)]  # ~160 KB as one event
        service.sink.on_result(frame(2, 0.2, crowd))
        service.sink.on_result(frame(3, 0.3, [detection(), detection()]))  # fires: alert + forbidden copy
        service.sink.on_result(frame(4, 0.4, [detection()]))
        assert service.drain(10) == 0
        assert sub.wait_for(has_seqs("result", 3), 10) and sub.wait_for(has_seqs("alert", 1), 10)
        results = [e for e in sub.events() if e["type"] == "result"]
        assert [e["frame"] for e in results] == [0, 3, 4] and [e["seq"] for e in results] == [1, 2, 3]
        assert not any(r.topic == "site/forbidden" for r in sub.received)
        snap = service.snapshot()
        assert (snap.invalid, snap.rejected) == (1, 2)
        logged = "\n".join(errors())
        assert "dropped an invalid result event: detections.0.score: Input should be a finite number" in logged
        assert "over the 131072-byte message limit ->" in logged
        assert "refused 1 alert event(s) on site/forbidden: PUBACK NOT_AUTHORIZED (0x87)" in logged
        stats = service.outbox_stats()
        assert stats is not None and stats.rejected == 2  # persisted: the oversize one and the refused one
    finally:
        sub.stop()
        broker.stop()


def test_outbox_cap_offline_evicts_results_first_and_health_counts_it(
        broker: Mosquitto, subscriber: Subscriber, make_service: ServiceFactory) -> None:
    broker.stop()
    service = make_service(broker.uri(), DOOR, mode="results", max_outbox_bytes=40_000)
    feed(service, 0, 300)
    service.emit_health()
    assert service.outbox is not None
    offline = service.outbox.stats()
    assert offline.bytes <= 40_000
    assert offline.evicted.get("result", 0) > 150 and "alert" not in offline.evicted
    broker.start()
    assert service.drain(15) == 0
    service.emit_health()
    assert service.drain(15) == 0
    evicted = service.outbox.stats().evicted
    assert evicted["result"] >= offline.evicted["result"] and "alert" not in evicted
    assert subscriber.wait_for(has_seqs("alert", 30), 15)
    survivors = list(range(evicted["result"] + 1, 301))  # the oldest results went first
    assert subscriber.wait_for(lambda rs: seqs([e for r in rs for e in r.events()], "result") == survivors, 15)
    assert seqs(subscriber.events(), "alert") == list(range(1, 31))  # every alert kept
    last_health = service.outbox.last_seq("health")  # the one emitted after the drain
    assert subscriber.wait_for(has_seqs("health", last_health), 10)
    health = next(e for e in subscriber.events() if e["type"] == "health" and e["seq"] == last_health)
    assert health["outbox"]["evicted"] == evicted and health["outbox"]["depth"] == 0
