"""The health gate in the real Greengrass component on the fake nucleus: a deployment that switches to a
model which loads but finds nothing is accepted (it validates and loads), then rolled back on the device
within the probation window; health telemetry to IoT Core and the status command say so; after a restart
with the same deployed configuration the component runs the model before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc import model

from tests.core.variants import blind_model

from .harness import THING, Core, stop
from .test_component_process import start_component

PROBATION = {"window_s": 1, "min_frames": 10, "min_label_results": 5, "max_latency_ratio": 50}


def health_rollbacks(core: Core) -> list[dict[str, Any]]:
    events = [json.loads(r.payload) for r in core.nucleus.iot_publishes(f"edgeinfer/{THING}/health")]
    return [e["run"]["rollback"] for e in events if (e.get("run") or {}).get("rollback")]


def faces(core: Core) -> int:
    return sum(len(json.loads(r.payload).get("detections") or [])
               for r in core.nucleus.iot_publishes(f"edgeinfer/{THING}/result"))


def test_a_deployed_model_that_finds_nothing_is_rolled_back_on_the_device(
        core: Core, inference_recipe, model_recipe, model_artifact, demo_media, demo_pkgs, tmp_path: Path) -> None:
    name = inference_recipe["ComponentName"]
    proc = start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[1])
    n = core.nucleus
    before = json.loads(json.dumps(n.components[name].config))
    report = n.deploy_configuration(name, {**before, "probation": PROBATION})
    assert report is not None and report.status == model.ConfigurationValidityStatus.ACCEPTED
    n.wait_for(lambda: faces(core) >= 8, 60, "a baseline of faces from the deployed model")

    blind = blind_model(demo_pkgs[0], tmp_path / "blind")
    bad = {**before, "probation": PROBATION, "model": {**before["model"], "path": str(blind)}}
    report = n.deploy_configuration(name, bad)
    assert report is not None and report.status == model.ConfigurationValidityStatus.ACCEPTED, \
        "it loads and passes the activation gate: only its behaviour gives it away"
    told = n.wait_for(lambda: health_rollbacks(core), 60, "a health event carrying the rollback")
    assert (told[0]["from"], told[0]["to"]) == ("2.0.0", "1.0.0") and "'face'" in told[0]["reason"]
    # the event sent at that moment says so: what the cloud's rule counts, once per rollback
    events = [json.loads(r.payload) for r in n.iot_publishes(f"edgeinfer/{THING}/health")]
    counted = [e for e in events if e.get("cause") == "rollback"]
    assert len(counted) == 1 and counted[0]["run"]["rollback"] == told[0]
    # (sent as the swap back is made; the next, at the previous model's first result, names the model running)
    n.wait_for(lambda: [e for e in (json.loads(r.payload) for r in n.iot_publishes(f"edgeinfer/{THING}/health"))
                        if e["model"]["version"] == "1.0.0" and (e.get("run") or {}).get("rollback")], 30,
               "a health event from the previous model carrying the rollback")
    status = core.command(name, {"id": "s1", "command": "status"})["result"]
    assert status["model"]["version"] == "1.0.0" and status["rollback"]["from"] == "2.0.0"
    assert n.components[name].state == "RUNNING", "it runs the previous model: nothing for the nucleus to restart"

    assert stop(proc) == 0 and core.procs.pop() is proc  # SIGTERM, as the nucleus stops it; the nucleus stays
    n.components[name].state = None
    proc = core.start(inference_recipe)  # the nucleus still holds the deployment naming the blind model
    core.wait_state(name, "RUNNING", proc)
    status = core.command(name, {"id": "s2", "command": "status"})["result"]
    assert status["model"]["version"] == "1.0.0", "a restart does not activate the rolled-back model again"
    assert "was rolled back on this device" in core.log(name)
