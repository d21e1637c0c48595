"""Greengrass faults, against the component process on the fake nucleus through the real IPC client:
deployments that pass the schema but cannot start FAIL validation with their reason; a configuration
that cannot start at boot falls back to the last one that ran; the running pipeline is never touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc import model

from ..greengrass.conftest import (  # _operator_allows_the_test_folders: autouse here too
    _operator_allows_the_test_folders,
    core,
    fast_config,
    inference_recipe,
    model_artifact,
    model_recipe,
)
from ..greengrass.fake_nucleus.launcher import stop
from ..greengrass.harness import Core
from .packages import edited_package, wrong_strides


def start(core: Core, inference_recipe: dict[str, Any], model_recipe: dict[str, Any],
          model_artifact: tuple[Path, Any], frames: Path, wait: str = "RUNNING", **merge: Any) -> Any:
    core.install(model_recipe, [model_artifact[0]])
    config = fast_config(frames)
    for k, v in merge.items():
        config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) else v
    core.install(inference_recipe, [], config)
    core.simulate_install(inference_recipe)
    proc = core.start(inference_recipe)
    if wait:
        core.wait_state(inference_recipe["ComponentName"], wait, proc)
    return proc


def status(gg: Core, name: str, n: int) -> dict[str, Any]:
    reply = gg.command(name, {"id": f"st{n}", "command": "status"})
    assert reply["ok"], reply
    return reply["result"]


def test_deployments_that_cannot_start_fail_validation(core: Core, inference_recipe, model_recipe,
                                                       model_artifact, demo_media, demo_pkgs,
                                                       tmp_path: Path) -> None:
    name = inference_recipe["ComponentName"]
    start(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    before = json.loads(json.dumps(n.components[name].config))
    regular = tmp_path / "a-file"
    regular.write_text("x")
    misfit = edited_package(demo_pkgs[0], tmp_path / "misfit", wrong_strides)
    cases = [
        ({"model": {**before["model"], "path": str(misfit)}}, "would not activate"),
        ({"source": {**before["source"], "uri": str(tmp_path / "camera-file-not-there.avi")}}, "does not exist"),
        ({"output": {**before.get("output", {}), "dir": str(regular / "out")}}, "output.dir"),
        ({"telemetry": {**before["telemetry"], "transport": "mqtts://broker:8883?ca=/no/ca.pem"}}, "ca"),
    ]
    for i, (change, words) in enumerate(cases):
        report = n.deploy_configuration(name, {**before, **change})
        assert report is not None and report.status == model.ConfigurationValidityStatus.REJECTED, (change, report)
        assert words in report.message, report.message
        assert n.components[name].config == before
        st = status(core, name, i)
        assert st["state"] == "running" and st["model"]["version"] == "1.0.0", st
    assert not (regular / "out").exists()


def test_a_configuration_that_cannot_start_falls_back_to_the_last_good_one(
        core: Core, inference_recipe, model_recipe, model_artifact, demo_media, demo_pkgs,
        tmp_path: Path) -> None:
    name = inference_recipe["ComponentName"]
    proc = start(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    good = json.loads(json.dumps(n.components[name].config))
    assert stop(proc) == 0 and core.procs.pop() is proc
    # the nucleus now hands a configuration that passes the schema but whose model does not fit
    misfit = edited_package(demo_pkgs[0], tmp_path / "misfit", wrong_strides)
    n.components[name].config = {**good, "model": {**good["model"], "path": str(misfit)}}
    n.components[name].state = None
    proc = core.start(inference_recipe)
    core.wait_state(name, "RUNNING", proc)
    st = status(core, name, 0)
    assert st["state"] == "running" and st["model"]["version"] == "1.0.0"
    assert "starting from the last good one" in core.log(name)
    assert proc.poll() is None


def test_without_a_last_good_configuration_a_bad_one_reports_errored(
        core: Core, inference_recipe, model_recipe, model_artifact, demo_media, demo_pkgs,
        tmp_path: Path) -> None:
    name = inference_recipe["ComponentName"]
    misfit = edited_package(demo_pkgs[0], tmp_path / "misfit", wrong_strides)
    proc = start(core, inference_recipe, model_recipe, model_artifact, demo_media[0], wait="",
                 model={"path": str(misfit), "warmup_runs": 1})
    assert proc.wait(90) == 1
    assert core.nucleus.components[name].state == "ERRORED"
    assert "decoder" in core.log(name) and "Traceback" not in core.log(name)


def test_a_finished_source_exits_0(core: Core, inference_recipe, model_recipe,
                                   model_artifact, demo_media) -> None:
    name = inference_recipe["ComponentName"]
    proc = start(core, inference_recipe, model_recipe, model_artifact, demo_media[0], wait="",
                 source={"uri": str(demo_media[0]), "loop": False, "fps": 50})
    assert proc.wait(90) == 0
    assert "source ended" in core.log(name)


def test_a_camera_that_is_not_there_keeps_the_component_running_and_waiting(
        core: Core, inference_recipe, model_recipe, model_artifact, demo_media) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    name = inference_recipe["ComponentName"]
    proc = start(core, inference_recipe, model_recipe, model_artifact, demo_media[0],
                 source={"uri": f"rtsp://127.0.0.1:{port}/cam", "loop": False})
    st = status(core, name, 0)
    assert st["state"] == "waiting" and "waiting for source" in st["reason"], st
    assert proc.poll() is None, "a camera that boots after the device must not end the component"
    health = core.nucleus.wait_for(lambda: [json.loads(r.payload) for r in core.nucleus.iot_publishes(
        "edgeinfer/+/health") if json.loads(r.payload).get("run", {}).get("state") == "waiting"], 30,
        "a health event saying waiting")
    assert "waiting for source" in health[0]["run"]["reason"]
