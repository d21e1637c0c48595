"""The amd64 IoT Edge module image, built from the repository with buildah and run for real.

What IoT Edge deploys is the image, not the package: these tests build ``modules/edgeinfer/Dockerfile.amd64``
(on a local Debian bookworm base, see conftest.py) and run its CMD against the IoT Edge harness of
tests/azure: the unmodified azure-iot-device client inside the image reads its twin from a test hub over
TLS Mosquitto, answers direct methods, sends telemetry on its outputs and stops on SIGTERM, as uid 10001
with the video group, its state on a mounted folder. The image itself: no pip or compilers, OCI labels,
a HEALTHCHECK that tells a live module from a hung one, a size budget, and layers that make a code change
a seconds-long rebuild and a small layer to push.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import edgeinfer
from tests.azure.hub import FakeHub
from tests.image.conftest import (
    ROOT,
    STATE_IN_IMAGE,
    UID,
    Image,
    StartInImage,
    build_image,
    desired_in_image,
    in_container,
    inspect_image,
    run,
)

# Every layer above the base: the virtualenv is 390 MB today (opencv-python-headless 176 MB with its bundled
# FFmpeg for video files and streams, onnxruntime 80 MB, numpy 73 MB, cryptography 16 MB, the rest 45 MB),
# the package 3 MB. The budget leaves ~8 % for dependency updates; more means something new came in (a
# second ONNX Runtime, a build tool, a cache).
ADDED_BUDGET_BYTES = 420_000_000
CODE_LAYER_BUDGET_BYTES = 10_000_000
GRACE_S = 10.0  # docker stop's default before SIGKILL, what edgeAgent's stop gives a module


def layer_sizes(ref: str) -> list[int]:
    manifest = json.loads(inspect_image(ref)["Manifest"])
    return [layer["size"] for layer in manifest["layers"]]


def diff_ids(ref: str) -> list[str]:
    return inspect_image(ref)["OCIv1"]["rootfs"]["diff_ids"]


def test_image_runs_as_10001_with_video_and_has_no_package_tools(module_image: Image, container: Any) -> None:
    assert module_image.config["User"] == str(UID), "numeric user, no group: the runtime adds supplementary groups"
    ctr = container()
    ident = in_container(ctr, "id")
    assert ident.returncode == 0, ident.stderr
    assert ident.stdout.startswith(f"uid={UID}(edgeinfer) gid={UID}(edgeinfer) "), ident.stdout
    groups = re.search(r"groups=(\S+)", ident.stdout)
    assert groups and "(video)" in groups.group(1), f"the video group (cameras) is not active: {ident.stdout}"
    tools = in_container(ctr, "sh", "-c", "for t in pip pip3 gcc cc g++ make; do command -v $t; done; true")
    assert tools.returncode == 0 and tools.stdout.strip() == "", f"on PATH in the final image: {tools.stdout}"
    for mod in ("pip", "setuptools", "wheel"):
        probe = in_container(ctr, "python", "-c", f"import {mod}")
        assert probe.returncode == 1 and f"No module named '{mod}'" in probe.stderr, (mod, probe.stderr)
    versions = in_container(ctr, "python", "-c", "import edgeinfer.azure, onnxruntime, cv2, azure.iot.device, "
                            "paho.mqtt; print(edgeinfer.__version__, paho.mqtt.__version__)")
    assert versions.returncode == 0, versions.stderr
    package, paho = versions.stdout.split()
    assert package == edgeinfer.__version__ and paho.startswith("1."), "azure-iot-device's paho-mqtt < 2"


def test_image_labels_healthcheck_and_entry_point(module_image: Image) -> None:
    cfg = module_image.config
    labels = cfg["Labels"]
    license_ = re.search(r'^license = \{ text = "([^"]+)" \}', (ROOT / "pyproject.toml").read_text(), re.M)
    module_json = json.loads((ROOT / "modules" / "edgeinfer" / "module.json").read_text())
    assert labels["org.opencontainers.image.title"] == "edgeinfer"
    assert "IoT Edge" in labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.version"] == edgeinfer.__version__ == module_json["image"]["tag"]["version"]
    assert license_ and labels["org.opencontainers.image.licenses"] == license_.group(1)
    assert labels["org.opencontainers.image.vendor"] == "edgeinfer"
    assert "org.opencontainers.image.source" in labels and "org.opencontainers.image.revision" in labels
    assert cfg["Cmd"] == ["python", "-m", "edgeinfer.azure"] and not cfg.get("Entrypoint")
    health = cfg["Healthcheck"]
    assert health["Test"][0] == "CMD" and health["Test"][1] == "python"
    assert health["Interval"] == 30 * 10**9 and health["StartPeriod"] >= 60 * 10**9 and health["Retries"] == 3
    assert module_image.env("EDGEINFER_STATE_DIR") == STATE_IN_IMAGE


def test_image_size_budget_and_a_small_code_layer(module_image: Image, base_image: str) -> None:
    base, sizes = layer_sizes(base_image), layer_sizes(module_image.id)
    assert sizes[:len(base)] == base, "the image starts from the base's layers"
    added = sizes[len(base):]
    assert sum(added) <= ADDED_BUDGET_BYTES, f"layers above the base: {sum(added) / 1e6:.0f} MB, {added}"
    assert added[-1] <= CODE_LAYER_BUDGET_BYTES, f"the package's layer (the last) is {added[-1] / 1e6:.1f} MB"


def test_a_code_change_rebuilds_in_seconds_and_changes_only_the_package_layer(module_image: Image, base_image: str,
                                                                              tmp_path: Path) -> None:
    """The same build context with one .py file touched: only the package layer differs."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for item in (".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / item, ctx / item)
    shutil.copytree(ROOT / "components", ctx / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "modules" / "edgeinfer", ctx / "modules" / "edgeinfer")
    touched = ctx / "components" / "edgeinfer" / "azure" / "limits.py"
    touched.write_text(touched.read_text() + "\n# a code-only change\n")
    image = build_image(base_image, tag="localhost/edgeinfer-test:amd64-touched", context=ctx)
    try:
        before, after = diff_ids(module_image.id), diff_ids(image.id)
        assert len(before) == len(after) and before[:-1] == after[:-1], "the dependencies' layers are reused"
        assert before[-1] != after[-1], "the package layer carries the change"
        assert image.build_s < 60, f"a code-only rebuild took {image.build_s:.0f}s"
    finally:
        run("buildah", "rmi", image.id, check=False)


def config_state(hub: FakeHub, version: int, status: str) -> dict[str, Any]:
    return hub.wait_reported(lambda r: r.get("config", {}).get("desired_version") == version
                             and r["config"].get("status") == status, what=f"desired v{version} {status}")


def wait_health(module: Any, healthy: bool, env: dict[str, str] | None = None,
                timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = module.healthcheck(env)
        if (result.returncode == 0) == healthy or time.monotonic() > deadline:
            return result


def test_module_in_the_image_twin_methods_telemetry_health_and_sigterm(module_in_image: StartInImage) -> None:
    rule = {"name": "face_seen", "when": {"label": "face", "min_score": 0.5}, "over": {"frames": 1},
            "actions": [{"type": "alert", "severity": "warning"}]}
    m = module_in_image(desired_in_image(rules=[rule]))
    reported = m.wait_ready()
    assert reported["state"] == "running" and reported["running"] is True
    assert reported["config"] == {"desired_version": 1, "applied_version": 1, "status": "applied"}
    assert reported["model"]["name"] == "blazeface-full-range" and reported["edgeinfer"] == edgeinfer.__version__
    assert reported["backend"]["backend"] == "onnxruntime" and reported["backend"]["active"]
    # the module used the workload socket as aziot-edged serves it
    assert [r.path for r in m.workload.requests[:2]] == ["/trust-bundle", "/modules/edgeinfer/genid/gen-7/sign"]

    # a twin patch is applied live, a bad one rejected
    v = m.hub.patch_desired({"model": {"score_threshold": 0.7}})
    assert config_state(m.hub, v, "applied")["threshold"] == 0.7
    v = m.hub.patch_desired({"pipeline": {"queue_size": "lots"}})
    assert "pipeline.queue_size" in config_state(m.hub, v, "rejected")["config"]["error"]

    # direct methods
    status, body = m.hub.invoke("getStats")
    assert status == 200 and body["running"] is True
    assert m.hub.invoke("setThreshold", {"value": 0.6}) == (200, {"score_threshold": 0.6})
    status, body = m.hub.invoke("reload", {"path": "/etc"})
    assert status == 400 and "outside remote.model_dirs" in body["error"], "the image's local settings apply"

    # telemetry and alerts on the module outputs
    types = {"result", "health", "alert"}
    m.hub.wait_for(lambda h: types <= {o.props.get("type") for o in h.outputs}, what=f"{types} on outputs")
    for out in list(m.hub.outputs):
        assert out.output == ("alerts" if out.props["type"] == "alert" else "telemetry")
        assert out.props["$.ct"] == "application/json"

    # state on the mounted folder, written by uid 10001
    for name in ("outbox.db", "azure/last-good.json"):
        st = (m.state_dir / name).stat()
        assert st.st_uid == UID, (name, st.st_uid)

    # HEALTHCHECK: the module serves by default, so its /healthz decides: healthy while it runs; a hung module
    # (SIGSTOP) does not answer; back when it resumes
    health = m.healthcheck()
    assert health.returncode == 0 and health.stdout.startswith("healthy: module pid"), health.stdout + health.stderr
    assert "answers http://127.0.0.1:9464/healthz 200 (running)" in health.stdout, health.stdout
    pid = m.module_pid()
    assert pid is not None and f"module pid {pid} " in health.stdout, health.stdout
    assert (Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]) == str(UID)
    fast = {"EDGEINFER_HEALTH_STALE_S": "3"}
    os.kill(pid, signal.SIGSTOP)
    try:
        hung = wait_health(m, healthy=False, env=fast)
        assert hung.returncode == 1 and "did not answer http://127.0.0.1:9464/healthz" in hung.stdout, hung.stdout
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = wait_health(m, healthy=True, env=fast)
    assert resumed.returncode == 0, resumed.stdout

    # SIGTERM (what the runtime sends the container's process when edgeAgent stops it): exit 0 within the grace
    started = time.monotonic()
    assert m.stop(timeout_s=GRACE_S) == 0, m.log_text()[-3000:]
    assert time.monotonic() - started < GRACE_S
    assert m.hub.reported["state"] == "stopping" and "Traceback" not in m.log_text()
    gone = m.healthcheck()
    assert gone.returncode == 1 and "no live" in gone.stdout, gone.stdout


def test_a_new_container_on_the_same_state_runs_the_last_good_config(module_in_image: StartInImage,
                                                                      tmp_path: Path) -> None:
    state = tmp_path / "volume"
    first = module_in_image(desired_in_image(), state_dir=state)
    first.wait_ready()
    assert first.stop(timeout_s=GRACE_S) == 0
    second = module_in_image({**desired_in_image(), "pipeline": {"mode": "turbo"}}, state_dir=state, version=7)
    reported = second.wait_ready()
    assert reported["config"]["applied_version"] == 1 and reported["config"]["status"] == "rejected"
    assert reported["state"] == "running" and reported["model"]["name"] == "blazeface-full-range"
    assert first.ctr != second.ctr, "a fresh container: what persisted is on the mounted state only"
    assert second.stop(timeout_s=GRACE_S) == 0

