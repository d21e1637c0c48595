"""IoT Edge faults, against the module process (unmodified azure-iot-device, TLS Mosquitto in a network
namespace, the test hub): desired versions that cannot start are rejected while the old pipeline keeps
inferring, and the reported properties say what runs — including a camera that is not there yet."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from ..azure.conftest import (  # _operator_allows_the_test_folders: autouse here too
    StartModule,
    _operator_allows_the_test_folders,
    edge_module,
    files,
    module_site,
    netns_prefix,
    pki,
    short_dir,
)
from ..azure.hub import FakeHub
from .packages import edited_package, wrong_strides


def desired_for(pkg: Path, source: str, **extra: Any) -> dict[str, Any]:
    return {"model": {"path": str(pkg), "warmup_runs": 1}, "source": {"uri": source, "loop": True, "fps": 10},
            "telemetry": {"mode": "summary", "window_s": 1, "health_interval_s": 1},
            "output": {"print_detections": False}, **extra}


def rejected(hub: FakeHub, version: int) -> dict[str, Any]:
    return hub.wait_reported(lambda r: r.get("config", {}).get("desired_version") == version
                             and r["config"].get("status") == "rejected", what=f"v{version} rejected")


def frames_grow(hub: FakeHub) -> bool:
    status, first = hub.invoke("getStats")
    assert status == 200
    tick = threading.Event()
    for _ in range(200):
        tick.wait(0.05)
        _, now = hub.invoke("getStats")
        if now["stats"].get("frames", 0) > first["stats"].get("frames", 0):
            return True
    return False


def test_versions_that_cannot_start_are_rejected_and_inference_goes_on(
        edge_module: StartModule, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
        tmp_path: Path) -> None:
    m = edge_module(desired_for(demo_pkgs[0], str(demo_media[0])))
    m.wait_ready()
    regular = tmp_path / "a-file"
    regular.write_text("x")
    misfit = edited_package(demo_pkgs[0], tmp_path / "misfit", wrong_strides)
    applied = 1
    for patch, undo, words in (
            ({"output": {"dir": str(regular / "out")}}, {"output": {"dir": None}}, "output.dir"),
            ({"model": {"path": str(misfit)}}, {"model": {"path": str(demo_pkgs[0])}}, "decoder"),
            ({"source": {"uri": str(tmp_path / "gone.avi")}}, {"source": {"uri": str(demo_media[0])}},
             "does not exist")):
        v = m.hub.patch_desired(patch)
        reported = rejected(m.hub, v)
        assert words in reported["config"]["error"], reported
        assert reported["config"]["applied_version"] == applied
        assert reported["state"] == "running" and reported["running"] is True
        assert reported["model"]["version"] == "1.0.0"
        assert frames_grow(m.hub), "the old pipeline must keep inferring"
        applied = m.hub.patch_desired(undo)  # back to the document that runs
        m.hub.wait_reported(lambda r, a=applied: r.get("config", {}).get("applied_version") == a, what="undo")
    assert m.stop() == 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_camera_that_is_not_there_is_waited_for_and_reported(
        edge_module: StartModule, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> None:
    camera = f"rtsp://127.0.0.1:{closed_port()}/cam"
    m = edge_module(desired_for(demo_pkgs[0], camera))
    reported = m.wait_ready()
    reported = m.hub.wait_reported(lambda r: r.get("state") == "waiting", what="state waiting")
    assert "waiting for source" in (reported["reason"] or "") and reported["config"]["status"] == "applied"
    assert reported["running"] is True and reported["model"]["version"] == "1.0.0"
    v = m.hub.patch_desired({"source": {"uri": str(demo_media[0])}})
    m.hub.wait_reported(lambda r: r.get("config", {}).get("applied_version") == v and r.get("state") == "running",
                        what="running on the new source")
    assert frames_grow(m.hub)
    assert m.stop() == 0
