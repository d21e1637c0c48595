"""/healthz and /readyz over a real run session and a real RTSP camera: they follow the pipeline as its source
is down (waiting), comes up (frames), goes down and comes back (recovers), and as the run stops; readiness lapses
and a stall is seen when no frame comes for longer than the settings allow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.serve.config import ServeConfig
from edgeinfer.core.serve.health import liveness, readiness
from edgeinfer.core.serve.recorder import Recorder
from edgeinfer.core.serve.server import StatusServer
from edgeinfer.core.session import RunSession

from ..faults.rtsp_server import RtspCamera, free_port, unavailable_reason
from .conftest import get_json, until


class Served:
    """A run session with the server and its recorder wired as every face wires them."""

    def __init__(self, cfg: EdgeInferConfig) -> None:
        self.recorder = Recorder()
        self.session = RunSession(cfg, extra_sinks=[self.recorder], restart_backoff_s=(0.05, 0.2))
        self.recorder.telemetry = lambda: self.session.telemetry
        self.server = StatusServer(ServeConfig(listen="127.0.0.1:0"), lambda: self.session, self.recorder)
        self.server.start()

    def probe(self, path: str) -> tuple[int, str, str | None]:
        code, doc = get_json(self.server.url + path)
        return code, doc["state"], doc["reason"]

    def frames(self) -> int:
        return int(self.session.stats().get("frames", 0))

    def close(self) -> None:
        self.session.stop(0)
        self.server.stop()


@pytest.fixture
def served(demo_pkgs: tuple[Path, Path]) -> Iterator[Any]:
    made: list[Served] = []

    def make(uri: str, loop: bool = False) -> Served:
        s = Served(EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": uri, "loop": loop}))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_a_camera_that_is_down_is_waiting_alive_and_ready(served: Any) -> None:
    s = served(f"rtsp://127.0.0.1:{free_port()}/cam")  # nothing listens there
    s.session.start()
    assert until(lambda: s.probe("/healthz")[1] == "waiting"), s.probe("/healthz")
    code, _, reason = s.probe("/healthz")
    assert code == 200 and reason and reason.startswith("waiting for source")
    assert s.probe("/readyz")[:2] == (200, "waiting")
    s.session.stop(0)
    assert s.probe("/healthz")[:2] == (503, "stopped")
    assert s.probe("/readyz")[:2] == (503, "stopped")


def test_health_and_ready_follow_a_camera_outage_and_recovery(served: Any) -> None:
    if (why := unavailable_reason()) is not None:
        pytest.skip(why)
    cam = RtspCamera(port=free_port())
    try:
        s = served(cam.url)
        s.session.start()  # the camera boots after the device
        assert until(lambda: s.probe("/readyz")[1] == "waiting")
        cam.start()
        assert until(lambda: s.frames() >= 3, 60), s.session.status()
        # running once frames flow (a loaded host may still see a late frame as a short wait: hence until)
        assert until(lambda: s.probe("/readyz") == (200, "running", None), 30), s.probe("/readyz")
        assert s.probe("/healthz")[0] == 200
        cam.stop()  # an outage
        assert until(lambda: s.probe("/healthz")[1] == "waiting", 30), s.session.status()
        assert s.probe("/healthz")[0] == 200 and s.probe("/readyz")[:2] == (200, "waiting")
        n = s.frames()
        cam.start()  # back
        assert until(lambda: s.frames() > n + 3, 60), s.session.status()
        assert until(lambda: s.probe("/readyz") == (200, "running", None), 30), s.probe("/readyz")
        assert s.probe("/healthz")[0] == 200
        s.session.stop(0)
        assert s.probe("/healthz")[:2] == (503, "stopped") and s.probe("/readyz")[0] == 503
    finally:
        cam.stop()


def test_readiness_lapses_and_a_stall_shows_when_frames_stop(served: Any, demo_media: tuple[Path, Path]) -> None:
    s = served(str(demo_media[1]), loop=True)
    s.session.start()
    assert until(lambda: s.frames() >= 3)
    cfg, rec = s.server.cfg, s.recorder
    assert rec.last_result_at is not None
    assert readiness(s.session, rec, cfg).ok and liveness(s.session, rec, cfg).ok
    # judged at a later moment than now (the checks take the time as an argument), on the same live session
    later = rec.last_result_at + cfg.ready_within_s + 1
    v = readiness(s.session, rec, cfg, now=later)
    assert not v.ok and v.reason and "last frame inferred" in v.reason
    assert liveness(s.session, rec, cfg, now=later).ok, "not stalled yet"
    v = liveness(s.session, rec, cfg, now=rec.last_result_at + cfg.stall_s + 1)
    assert not v.ok and v.state == "stalled"
