"""Several streams through the IoT Edge module (unmodified azure-iot-device, Mosquitto with TLS, the test hub):
every frame of every stream in the module's outputs, a twin patch that changes the streams in place, each
stream's state in the reported properties, a snapshot of one stream by direct method."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.azure.conftest import StartModule


def streams(prefix: str, n: int, frames: int | None = None, fps: float = 10) -> list[dict[str, Any]]:
    count = f":{frames}" if frames else ""
    return [{"id": f"{prefix}{i}", "uri": f"synthetic:96x64{count}", "fps": fps} for i in range(n)]


def per_stream(m: Any) -> Counter[str]:
    return Counter(o.json().get("stream") for o in list(m.hub.outputs) if o.props.get("type") == "result")


def test_streams_through_the_module(edge_module: StartModule, demo_pkgs: tuple[Path, Path]) -> None:
    finite = [{**s, "uri": f"synthetic:96x64:{4 + 3 * i}"} for i, s in enumerate(streams("cam", 4, fps=40))]
    desired = {"model": {"path": str(demo_pkgs[0])}, "sources": finite,
               "telemetry": {"mode": "results", "window_s": 1, "health_interval_s": 1},
               "output": {"print_detections": False}}
    m = edge_module(desired)
    m.wait_ready()
    expected = {f"cam{i}": 4 + 3 * i for i in range(4)}
    reported = m.hub.wait_reported(lambda r: r.get("state") == "finished", 60, "the four finite streams ended")
    assert reported["streams"] == {sid: {"state": "finished"} for sid in expected}  # a null reason: no key
    counts = m.hub.wait_for(lambda h: per_stream(m) if all(per_stream(m)[k] >= v for k, v in expected.items())
                            else None, 30, "every result on the outputs")
    assert {k: counts[k] for k in expected} == expected  # exactly: none lost, none twice

    # eight paced streams by twin patch (a list in a merge patch replaces the list)
    v = m.hub.patch_desired({"sources": streams("door", 8)})
    m.hub.wait_reported(lambda r: r.get("config", {}).get("applied_version") == v
                        and sorted(r.get("streams") or {}) == sorted(f"door{i}" for i in range(8))
                        and all(s["state"] == "running" for s in r["streams"].values()), 60, "eight streams")
    m.hub.wait_for(lambda h: all(per_stream(m)[f"door{i}"] > 2 for i in range(8)) or None, 60,
                   "eight streams' results")
    status, body = m.hub.invoke("snapshot", {"stream": "door5"})
    assert status == 200 and body["stream"] == "door5", body
    image = cv2.imdecode(np.frombuffer(base64.b64decode(body["data"]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (64, 96)
    status, body = m.hub.invoke("snapshot", {"stream": "cam0"})
    assert status == 400 and "no stream named 'cam0' runs" in body["error"]
    status, body = m.hub.invoke("getStats")
    assert status == 200 and set(body["streams"]) == {f"door{i}" for i in range(8)}
    frames_before = body["streams"]["door0"]["frames"]

    # two of the eight kept, one added: in place (door0 counts on), and a bad id refused whole
    v = m.hub.patch_desired({"sources": [*streams("door", 2), {"id": "gate.1", "uri": "synthetic:64x64"}]})
    bad = m.hub.wait_reported(lambda r: r.get("config", {}).get("desired_version") == v
                              and r["config"].get("status") == "rejected", 30, "a stream id with a dot refused")
    assert "sources.2.id" in bad["config"]["error"] and len(bad["streams"]) == 8
    v = m.hub.patch_desired({"sources": [*streams("door", 2), {"id": "gate", "uri": "synthetic:64x64", "fps": 10}]})
    m.hub.wait_reported(lambda r: r.get("config", {}).get("applied_version") == v
                        and sorted(r.get("streams") or {}) == ["door0", "door1", "gate"], 60, "three streams")
    status, body = m.hub.invoke("getStats")
    assert body["streams"]["door0"]["frames"] >= frames_before  # the pipeline was never rebuilt
    assert m.stop() == 0
