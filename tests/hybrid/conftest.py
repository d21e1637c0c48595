"""Fixtures of the hybrid tests: a throwaway PKI, moto over TLS with test credentials, Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.telemetry.pki import Pki, make_pki

from .servers import Azurite, MotoTLS, azurite_bin


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for moto (boto3's default chain reads them), none from the machine."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                 "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def moto(pki: Pki, aws_env: None) -> Iterator[MotoTLS]:
    server = MotoTLS(pki).start().reset()
    yield server
    server.stop()


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    try:
        exe = azurite_bin()
    except Exception as exc:  # npm there but the install failed (no registry): say so
        pytest.skip(f"azurite could not be installed with npm: {exc}")
    if exe is None:
        pytest.skip("npm/node not available: install them (scripts/bootstrap.sh test) to run the Azurite tests")
    server = Azurite(exe, tmp_path / "azurite").start()
    yield server
    server.stop()
