"""Batch linger against a real Mosquitto: partial batches wait to fill, alerts and the exit drain never wait."""

from __future__ import annotations

import time

from edgeinfer.core.telemetry.linger import Linger
from edgeinfer.core.telemetry.record import Record

from .conftest import ServiceFactory
from .mosquitto import Mosquitto, Subscriber
from .test_mqtt import DOOR, feed, has_seqs


def test_a_partial_batch_waits_up_to_the_linger_then_goes_as_one_message(
        broker: Mosquitto, subscriber: Subscriber, make_service: ServiceFactory) -> None:
    service = make_service(broker.uri(), mode="results", batch=True, batch_linger_s=2.0)
    t0 = time.perf_counter()
    feed(service, 2, 20)  # 20 frames back to back, one person each: no alert
    assert subscriber.wait_for(has_seqs("result", 20), 15)
    messages = [r for r in subscriber.received if r.topic.endswith("/result")]
    assert [m.user_properties["count"] for m in messages] == ["20"]  # without linger: mostly 1-event batches
    assert messages[0].at - t0 >= 1.5  # held until the oldest event had waited ~2 s


def test_alerts_never_wait_and_the_exit_drain_does_not_linger(
        broker: Mosquitto, subscriber: Subscriber, make_service: ServiceFactory) -> None:
    service = make_service(broker.uri(), DOOR, mode="results", batch=True, batch_linger_s=30.0)
    feed(service, 2, 5)  # results that linger
    t0 = time.perf_counter()
    feed(service, 10, 2)  # two people on two frames: the door rule fires
    assert subscriber.wait_for(lambda rs: any(r.topic.endswith("/alert") for r in rs), 10)
    alert = next(r for r in subscriber.received if r.topic.endswith("/alert"))
    assert alert.at - t0 < 10  # not held for the 30 s linger
    t1 = time.monotonic()
    assert service.drain(20) == 0
    assert time.monotonic() - t1 < 10
    assert subscriber.wait_for(has_seqs("result", 7), 10)


def test_linger_decision() -> None:
    def rec(n: int, priority: int = 0, created: float = 100.0) -> Record:
        return Record(n, priority, str(n), "result", n, "t", "1", created, b"{}")

    linger = Linger(2.0, batch_events=3)
    assert linger.wait_s([rec(1, created=100.0)], now=100.5) == 1.5
    assert linger.wait_s([rec(1, created=100.0)], now=103.0) == 0.0  # waited long enough (a backlog too)
    assert linger.wait_s([rec(1, created=100.0)], now=50.0) == 2.0  # a clock step back never holds longer
    assert linger.wait_s([rec(i) for i in range(3)], now=100.0) == 0.0  # a full batch goes at once
    assert linger.wait_s([rec(1, priority=3), rec(2)], now=100.0) == 0.0  # an alert goes at once
    assert Linger(0.0, 3).wait_s([rec(1)], now=100.0) == 0.0
