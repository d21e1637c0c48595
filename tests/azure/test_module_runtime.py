"""The module (``python -m edgeinfer.azure``, unmodified azure-iot-device) against Mosquitto with TLS,
a test-side hub and a fake workload API: start, desired properties, bad patches, reported properties,
direct methods, telemetry on module outputs, shutdown."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.azure.conftest import DEVICE, GENERATION, HUB_HOST, MODULE, StartModule
from tests.azure.hub import FakeHub


def desired_for(pkg: Path, images: Path, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": {"path": str(pkg)},
        "source": {"uri": str(images), "loop": True, "fps": 8},
        "telemetry": {"mode": "results", "window_s": 1, "health_interval_s": 1},
        "output": {"print_detections": False},
    }
    doc.update(extra)
    return doc


@pytest.fixture
def desired(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> dict[str, Any]:
    return desired_for(demo_pkgs[0], demo_media[0])


def config_state(hub: FakeHub, version: int, status: str) -> dict[str, Any]:
    """Reported properties once desired ``version`` reached ``status``."""
    return hub.wait_reported(lambda r: r.get("config", {}).get("desired_version") == version
                             and r["config"].get("status") == status, what=f"desired v{version} {status}")


def test_module_starts_applies_the_twin_and_reports(edge_module: StartModule, desired: dict[str, Any]) -> None:
    m = edge_module(desired)
    reported = m.wait_ready()
    assert reported["state"] == "running" and reported["running"] is True
    assert reported["config"] == {"desired_version": 1, "applied_version": 1, "status": "applied"}
    assert reported["model"]["name"] == "blazeface-full-range" and reported["model"]["version"] == "1.0.0"
    assert len(reported["model"]["sha256"]) == 64 and reported["model"]["task"] == "detection"
    assert reported["backend"]["backend"] == "onnxruntime" and reported["backend"]["active"]
    # the test venv's onnxruntime is the CPU build: the CPU EP is what could run, so nothing is degraded; a
    # degraded backend would have to say why
    assert reported["backend"]["degraded"] is False and reported["backend"]["active"] == "CPUExecutionProvider"
    assert "reason" not in reported["backend"] or reported["backend"]["reason"] is None
    assert reported["methods"] == "reload,snapshot,getStats,setThreshold"
    assert len(json.dumps(reported)) < 32 * 1024
    # create_from_edge_environment used the workload API as aziot-edged serves it
    trust, sign = m.workload.requests[:2]
    assert (trust.method, trust.path, trust.query) == ("GET", "/trust-bundle", {"api-version": ["2019-01-30"]})
    assert (sign.method, sign.path) == ("POST", f"/modules/{MODULE}/genid/{GENERATION}/sign")
    assert sign.body is not None and sign.body["keyId"] == "primary" and sign.body["algo"] == "HMACSHA256"
    signed = base64.b64decode(str(sign.body["data"])).decode()
    assert signed.startswith(f"{HUB_HOST}%2Fdevices%2F{DEVICE}%2Fmodules%2F{MODULE}\n")
    assert m.stop() == 0


def test_bad_patches_are_rejected_and_the_running_config_stays(edge_module: StartModule,
                                                               desired: dict[str, Any]) -> None:
    m = edge_module(desired)
    m.wait_ready()
    v = m.hub.patch_desired({"pipeline": {"queue_size": "lots"}})
    reported = config_state(m.hub, v, "rejected")
    assert "pipeline.queue_size" in reported["config"]["error"]
    assert reported["config"]["applied_version"] == 1 and reported["state"] == "running" and reported["running"]
    v = m.hub.patch_desired({"pipeline": {"queue_size": 8}, "colour": "red"})
    reported = config_state(m.hub, v, "rejected")
    assert "colour: unknown key" in reported["config"]["error"] and reported["config"]["applied_version"] == 1
    v = m.hub.patch_desired({"colour": None, "telemetry": {"transport": "mqtt://127.0.0.1:1883"}})
    reported = config_state(m.hub, v, "rejected")
    assert "the module sends telemetry through its outputs" in reported["config"]["error"], reported
    v = m.hub.patch_desired({"colour": "red", "telemetry": {"transport": None}})
    config_state(m.hub, v, "rejected")
    status, stats = m.hub.invoke("getStats")
    assert status == 200 and stats["config_version"] == 0, "nothing was applied"
    v = m.hub.patch_desired({"colour": None, "model": {"score_threshold": 0.8}})
    reported = config_state(m.hub, v, "applied")
    assert reported["config"]["applied_version"] == v and reported["threshold"] == 0.8
    status, stats = m.hub.invoke("getStats")
    assert stats["config_version"] == 1
    assert m.stop() == 0


def test_direct_methods_answer_with_status_codes(edge_module: StartModule, desired: dict[str, Any]) -> None:
    m = edge_module(desired)
    m.wait_ready()
    status, body = m.hub.invoke("getStats", None)
    assert status == 200 and body["running"] is True and "frames" in json.dumps(body["stats"])
    assert m.hub.invoke("setThreshold", {"value": 0.65}) == (200, {"score_threshold": 0.65})
    m.hub.wait_reported(lambda r: r.get("threshold") == 0.65, what="threshold reported")
    assert m.hub.invoke("setThreshold", 0.7) == (200, {"score_threshold": 0.7})
    for bad in ("high", 1.5, {"value": True}, None):
        status, body = m.hub.invoke("setThreshold", bad)
        assert status == 400 and "0 to 1" in body["error"], (bad, body)
    m.hub.wait_for(lambda h: any(o.props.get("type") == "result" for o in h.outputs), what="a first result")
    status, body = m.hub.invoke("snapshot", {})
    assert status == 200, body
    assert body["content_type"] == "image/jpeg" and body["encoding"] == "base64"
    jpeg = base64.b64decode(body["data"])
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (body["height"], body["width"]) and len(body["data"]) <= 96 * 1024
    assert m.hub.invoke("snapshot", {"max_bytes": 10})[0] == 400
    status, body = m.hub.invoke("reload", {})
    assert status == 200 and body["model"]["name"] == "blazeface-full-range"
    status, body = m.hub.invoke("reload", {"path": str(m.state_dir / "nonexistent-package")})
    assert status == 422 and "does not exist" in body["error"]
    status, body = m.hub.invoke("reload", {"path": "/etc"})  # a method is remote input: remote.model_dirs only
    assert status == 400 and "reload refused: path: /etc is outside remote.model_dirs" in body["error"], body
    status, body = m.hub.invoke("reload", {"path": 42})
    assert status == 400
    status, body = m.hub.invoke("selfDestruct", {})
    assert status == 404 and "reload, snapshot, getStats, setThreshold" in body["error"]
    status, body = m.hub.invoke("getStats")
    assert status == 200 and body["model"]["version"] == "1.0.0", "a failed reload keeps the model"
    assert m.stop() == 0


def test_telemetry_goes_to_module_outputs_with_properties(edge_module: StartModule,
                                                          desired: dict[str, Any]) -> None:
    rule = {"name": "face_seen", "when": {"label": "face", "min_score": 0.5}, "over": {"frames": 1},
            "actions": [{"type": "alert", "severity": "warning"}]}
    m = edge_module({**desired, "rules": [rule]})
    m.wait_ready()
    types = {"result", "health", "alert"}
    m.hub.wait_for(lambda h: types <= {o.props.get("type") for o in h.outputs}, what=f"{types} on outputs")
    prefix = f"devices/{DEVICE}/modules/{MODULE}/messages/events/"
    for out in list(m.hub.outputs):
        event = out.json()
        assert out.topic.startswith(prefix)
        assert out.output == ("alerts" if event["type"] == "alert" else "telemetry")
        assert out.props["$.ct"] == "application/json" and out.props["$.ce"] == "utf-8"
        assert out.props["$.mid"] == event["id"], "message id = event id (receivers dedupe by it)"
        assert out.props["type"] == event["type"] and out.props["model_version"] == event["model_version"]
        assert out.props["schema"] == str(event["v"]) and out.props["count"] == "1"
        assert event["device"] == DEVICE and len(out.payload) <= 256 * 1024
    alert = next(o.json() for o in m.hub.outputs if o.output == "alerts")
    assert alert["rule"] == "face_seen"
    assert m.stop() == 0


def test_module_waits_for_a_model_then_runs_it(edge_module: StartModule, desired: dict[str, Any]) -> None:
    without_model = {k: v for k, v in desired.items() if k != "model"}
    m = edge_module(without_model)
    reported = m.wait_ready()
    assert reported["state"] == "waiting" and reported["running"] is False
    assert reported["config"]["status"] == "rejected" and "no model configured" in reported["config"]["error"]
    status, body = m.hub.invoke("getStats")
    assert status == 503 and "no model configured" in body["error"]
    v = m.hub.patch_desired({"model": desired["model"]})
    reported = config_state(m.hub, v, "applied")
    assert reported["state"] == "running" and reported["model"]["name"] == "blazeface-full-range"
    assert m.stop() == 0


def test_restart_with_a_bad_twin_runs_the_last_good_config(edge_module: StartModule, desired: dict[str, Any],
                                                            tmp_path: Path) -> None:
    state = tmp_path / "shared-state"
    first = edge_module(desired, state_dir=state)
    first.wait_ready()
    assert first.stop() == 0
    second = edge_module({**desired, "pipeline": {"mode": "turbo"}}, state_dir=state, version=7)
    reported = second.wait_ready()
    assert reported["config"] == {"desired_version": 7, "applied_version": 1, "status": "rejected",
                                  "error": reported["config"]["error"]}
    assert "pipeline.mode" in reported["config"]["error"]
    assert reported["state"] == "running" and reported["model"]["name"] == "blazeface-full-range"
    assert second.stop() == 0


def test_sigterm_stops_cleanly(edge_module: StartModule, desired: dict[str, Any]) -> None:
    m = edge_module(desired)
    m.wait_ready()
    assert m.stop() == 0
    assert m.hub.reported["state"] == "stopping" and m.hub.reported["running"] is False
    assert "Traceback" not in m.log_text()


def test_outside_iot_edge_the_entry_point_says_why(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTEDGE_")}
    proc = subprocess.run([sys.executable, "-m", "edgeinfer.azure"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "not running under IoT Edge: IOTEDGE_IOTHUBHOSTNAME" in proc.stderr and "Traceback" not in proc.stderr
