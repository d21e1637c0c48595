"""Cloud fallback to an Azure ML online endpoint: the plain HTTPS client (netguard's guarded opener) against a
local scoring server with key auth, in the default format (image/jpeg in, edgeinfer's detections JSON out)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edgeinfer.core.errors import ConfigError
from edgeinfer.core.fallback.client import client_for
from edgeinfer.core.fallback.config import FallbackConfig
from edgeinfer.core.fallback.formats import codec
from edgeinfer.core.fallback.service import FallbackService
from edgeinfer.core.netguard import Outbound

from .frames import answer, result
from .servers import ScoringServer

KEY = "aml-endpoint-key-1"


@pytest.fixture
def scoring(pki) -> Iterator[ScoringServer]:
    server = ScoringServer(pki, KEY, answer((6, 8, 36, 48))).start()
    yield server
    server.stop()


def aml_cfg(scoring: ScoringServer, ca: str, **endpoint: Any) -> FallbackConfig:
    return FallbackConfig.model_validate({
        "enabled": True, "hosts": ["localhost"], "crop": True,
        "endpoint": {"type": "azureml", "scoring_uri": scoring.url, "ca_file": ca, "deployment": "blue",
                     **endpoint}})


def run(cfg: FallbackConfig, *frames: float) -> tuple[FallbackService, list[dict[str, Any]]]:
    assert cfg.endpoint is not None
    events: list[dict[str, Any]] = []
    svc = FallbackService(cfg, client_for(cfg.endpoint, Outbound(hosts=tuple(cfg.hosts))), codec(cfg.format),
                          events.append)
    svc.start()
    try:
        for i, score in enumerate(frames):
            r = result(i, score)
            svc.count_frame()
            svc.offer(r, "uncertain", r.image)
            assert svc.idle.wait(20)
    finally:
        svc.close()
    return svc, events


def test_a_cropped_jpeg_goes_to_the_scoring_uri_with_the_key(scoring: ScoringServer, pki,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEINFER_AZUREML_KEY", KEY)
    _, events = run(aml_cfg(scoring, str(pki.ca)), 0.4)
    (seen,) = scoring.seen
    assert seen["ok"] and seen["content_type"] == "image/jpeg" and seen["deployment"] == "blue"
    assert seen["body"][:2] == b"\xff\xd8"
    (ev,) = events
    assert ev["ok"] and ev["endpoint"] == "azureml" and ev["crop"] == [4, 2, 47, 59]
    assert ev["detections"][0]["box"] == [10.0, 10.0, 40.0, 50.0], "the crop's boxes moved back into the frame"
    assert ev["agreement"] == 1.0


def test_a_wrong_key_is_a_counted_failure(scoring: ScoringServer, pki, tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("not-the-key\n")
    svc, events = run(aml_cfg(scoring, str(pki.ca), key_file=str(key_file)), 0.4, 0.5)
    assert [e["ok"] for e in events] == [False, False]
    assert events[0]["error"] == "Azure ML endpoint answered HTTP 401"
    assert svc.state()["failed"] == 2


def test_a_missing_key_refuses_the_configuration(scoring: ScoringServer, pki,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEINFER_AZUREML_KEY", raising=False)
    cfg = aml_cfg(scoring, str(pki.ca))
    assert cfg.endpoint is not None
    with pytest.raises(ConfigError, match=r"no Azure ML endpoint key in \$EDGEINFER_AZUREML_KEY"):
        client_for(cfg.endpoint, Outbound(hosts=("localhost",)))
