"""Mutual TLS as for IoT Core, against Mosquitto with certificates made at test time: a wrong CA or
a missing client certificate is a clear error within seconds, nothing is lost, and delivery resumes
once the configuration is fixed (same state dir, as after a config update and restart)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import ServiceFactory
from .mosquitto import Mosquitto, Subscriber, seqs, wait_until
from .pki import Pki
from .test_mqtt import feed, has_seqs


@pytest.fixture
def observer(tls_broker: Mosquitto) -> Iterator[Subscriber]:
    s = Subscriber(tls_broker.port).start()  # on the broker's plain listener
    yield s
    s.stop()


def good_uri(broker: Mosquitto, pki: Pki) -> str:
    return broker.uri(tls=True, ca=str(pki.ca), cert=str(pki.client_cert), key=str(pki.client_key))


def test_mutual_tls_delivers(tls_broker: Mosquitto, pki: Pki, observer: Subscriber,
                             make_service: ServiceFactory) -> None:
    service = make_service(good_uri(tls_broker, pki), mode="results")
    feed(service, 0, 10)
    assert service.drain(10) == 0
    assert observer.wait_for(has_seqs("result", 10), 10)
    assert service.transport is not None and service.transport.status().error is None


@pytest.mark.parametrize(("broken", "message"), [
    ("wrong_ca", "the broker's certificate is not trusted by ca="),
    ("no_client_cert", "the broker requires a client certificate"),
])
def test_tls_misconfiguration_is_clear_loses_nothing_and_resumes_when_fixed(
        tls_broker: Mosquitto, pki: Pki, observer: Subscriber, make_service: ServiceFactory,
        broken: str, message: str) -> None:
    query = {"ca": str(pki.wrong_ca), "cert": str(pki.client_cert), "key": str(pki.client_key)} \
        if broken == "wrong_ca" else {"ca": str(pki.ca)}
    service = make_service(tls_broker.uri(tls=True, **query), mode="results")
    assert service.transport is not None
    assert wait_until(lambda: message in (service.transport.status().error or ""), 5), service.transport.status()
    error = service.transport.status().error or ""
    assert "->" in error and "cert=/key=" in error  # problem -> fix, on one line
    feed(service, 0, 20)
    assert service.drain(0.5) == 21  # 20 results + the start health: all kept
    service.close()
    assert observer.received == []

    fixed = make_service(good_uri(tls_broker, pki), mode="results")  # same state dir: the outbox carries over
    feed(fixed, 20, 5)
    assert fixed.drain(15) == 0
    assert observer.wait_for(has_seqs("result", 25), 10)
    assert seqs(observer.events(), "result") == list(range(1, 26))
