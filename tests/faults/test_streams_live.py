"""One camera of several goes away and comes back (a real GStreamer RTSP camera): it waits and recovers on its
own, says so per stream, and the other stream's frames never stop or start over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeinfer.core.config import validate
from edgeinfer.core.session import RunSession

from ..core.by_stream import ByStream
from .rtsp_server import RtspCamera
from .test_sources_live import wait_for


def test_one_camera_down_and_back_is_invisible_to_the_other_stream(
        rtsp_camera_factory: Callable[..., RtspCamera], demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    cam = rtsp_camera_factory().start()
    cfg = validate({"model": {"path": str(demo_pkgs[0])}, "state_dir": str(tmp_path / "state"),
                    "sources": [{"id": "gate", "uri": cam.url}, {"id": "yard", "uri": "synthetic:160x120", "fps": 40}]})
    sink = ByStream()
    session = RunSession(cfg, extra_sinks=[sink])
    session.start()
    try:
        assert sink.wait_for("gate", 3, 30) and sink.wait_for("yard", 3)
        runner = session._runner
        cam.stop()  # the outage
        state = wait_for(lambda: (session.streams() or {})["gate"]["state"] == "waiting", 15)
        assert state, session.streams()
        during = sink.count("gate")
        assert sink.wait_for("yard", 40)  # the other stream goes on at its pace
        assert session.state() == ("running", None)  # the run as a whole infers
        degraded = [d for d in session.degraded() if d.startswith("stream gate: waiting")]
        assert degraded and "stream yard" not in " ".join(session.degraded()), session.degraded()
        health = session._run_state()["streams"]
        assert health["gate"]["state"] == "waiting" and health["yard"]["state"] == "running"
        assert sink.count("gate") <= during + 1  # at most the frame already in flight
        cam.start()  # back on the same URL
        assert sink.wait_for("gate", 3, 30), session.streams()
        assert session.streams()["gate"]["state"] == "running"  # type: ignore[index]
        assert not [d for d in session.degraded() if d.startswith("stream ")]
        yard = [r.index for r in sink.results["yard"]]
        assert yard == list(range(len(yard)))  # never restarted: the one pipeline ran throughout
        assert session._runner is runner
    finally:
        session.stop(0)
