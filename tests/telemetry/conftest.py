"""Telemetry fixtures: a test-time PKI, real Mosquitto brokers (plain and mutual TLS), an
independent paho subscriber, and a factory for TelemetryServices that are closed after the test."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.telemetry.service import TelemetryService
from edgeinfer.core.telemetry.transport import Transport

from .mosquitto import MOSQUITTO, Mosquitto, Subscriber
from .pki import Pki, make_pki
from .synthetic import run_context

#: Fast retries so a restarted broker is found again within a second.
FAST = {"health_interval_s": 3600, "retry": {"initial_s": 0.05, "max_s": 0.5}, "send_timeout_s": 5}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _needs_mosquitto(request: pytest.FixtureRequest) -> None:
    uses_broker = {"broker", "tls_broker", "subscriber"} & set(request.fixturenames)
    if (uses_broker or request.module.__name__.endswith(("test_mqtt", "test_kill", "test_tls"))) and not MOSQUITTO:
        pytest.skip("mosquitto is not installed (scripts/bootstrap.sh test installs it)")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "tls-broker", pki=pki).start()
    yield b
    b.stop()


@pytest.fixture
def subscriber(broker: Mosquitto) -> Iterator[Subscriber]:
    s = Subscriber(broker.port).start()
    yield s
    s.stop()


def make_config(transport: str, rules: list[dict[str, Any]] | None = None,
                hooks: dict[str, Any] | None = None, **telemetry: Any) -> EdgeInferConfig:
    return EdgeInferConfig.model_validate({"device_id": "dev-1", "telemetry": {"transport": transport, **FAST,
                                                                             **telemetry},
                                           "rules": rules or [], "hooks": hooks or {}})


ServiceFactory = Callable[..., TelemetryService]


@pytest.fixture
def make_service() -> Iterator[ServiceFactory]:
    made: list[TelemetryService] = []

    def factory(transport: str = "none", rules: list[dict[str, Any]] | None = None,
                transport_obj: Transport | None = None, start: bool = True, hooks: dict[str, Any] | None = None,
                **telemetry: Any) -> TelemetryService:
        service = TelemetryService.from_config(make_config(transport, rules, hooks, **telemetry), run_context(),
                                               transport=transport_obj)
        made.append(service)
        if start:
            service.start()
        return service

    yield factory
    for service in made:
        service.close()


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The ERROR/WARNING lines logged so far, as text."""
    caplog.set_level(logging.INFO)
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
