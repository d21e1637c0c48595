"""The component process, started from the rendered recipe's Run lifecycle, against the fake nucleus
through the real, unmodified GreengrassCoreIPCClientV2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc import model

from .conftest import fast_config
from .harness import THING, Core


def start_component(core: Core, inference_recipe: dict[str, Any], model_recipe: dict[str, Any],
                    model_artifact: tuple[Path, Any], frames: Path, **telemetry: Any) -> Any:
    core.install(model_recipe, [model_artifact[0]])
    core.install(inference_recipe, [], fast_config(frames, **telemetry))
    core.simulate_install(inference_recipe)
    proc = core.start(inference_recipe)
    core.wait_state(inference_recipe["ComponentName"], "RUNNING", proc)
    return proc


def test_component_runs_from_recipe_and_publishes_telemetry(core: Core, inference_recipe, model_recipe,
                                                            model_artifact, demo_media) -> None:
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    assert n.requests("GetConfiguration", name), "the component reads its configuration at start"
    results = n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "result telemetry")
    r = results[0]
    assert r.qos == model.QOS.AT_LEAST_ONCE
    assert r.content_type == "application/json"
    props = {p.key: p.value for p in r.user_properties}
    assert props["type"] == "result" and props["model_version"] == "1.0.0" and props["count"] == "1"
    event = json.loads(r.payload)
    assert event["device"] == THING and event["model_version"] == "1.0.0" and event["type"] == "result"
    assert n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/health"), 30, "health telemetry")
    # local results for other components, on the pub/sub topic the recipe allows
    local = n.wait_for(lambda: n.requests("PublishToTopic", name), 30, "local results")
    assert local[0].topic == "edgeinfer/results" and local[0].publish_message.json_message.message["device"] == THING
    # component metrics: refused to non-aws.* components by the nucleus, handled without noise
    assert n.wait_for(lambda: n.requests("PutComponentMetric", name), 30, "a PutComponentMetric attempt")
    assert core.stop_all() == [0], "SIGTERM: telemetry drained, clean exit"
    assert "Traceback" not in core.log(name)


def test_bad_config_update_is_rejected_and_running_config_stays(core: Core, inference_recipe, model_recipe,
                                                                model_artifact, demo_media) -> None:
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    before = dict(n.components[name].config)
    bad = {**before, "pipeline": {**before["pipeline"], "queue_size": 0, "colour": "blue"}}
    report = n.deploy_configuration(name, bad)
    assert report is not None and report.status == model.ConfigurationValidityStatus.REJECTED
    assert "pipeline.queue_size" in report.message and "pipeline.colour: unknown key" in report.message
    assert n.components[name].config == before, "a rejected deployment leaves the configuration as it was"
    status = core.command(name, {"id": "s1", "command": "status"})
    assert status["ok"] and status["result"]["running"] is True
    # a good update is accepted and applied (threshold change: no restart)
    good = {**before, "model": {**before["model"], "score_threshold": 0.8}}
    report = n.deploy_configuration(name, good)
    assert report is not None and report.status == model.ConfigurationValidityStatus.ACCEPTED
    applied = n.wait_for(lambda: core.command(name, {"id": f"v{len(n.records)}", "command": "status"})["result"]
                         ["config_version"] >= 1, 30, "the accepted configuration applied")
    assert applied


def test_commands_threshold_snapshot_and_unknown(core: Core, inference_recipe, model_recipe, model_artifact,
                                                 demo_media) -> None:
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "frames flowing")
    reply = core.command(name, {"id": "t1", "command": "set_threshold", "args": {"value": 0.3}})
    assert reply["ok"] and reply["result"] == {"score_threshold": 0.3}
    assert reply["_request"].correlation_data == b"corr-t1"
    snap = core.command(name, {"id": "p1", "command": "snapshot"})
    assert snap["ok"], snap
    jpeg = n.iot_publishes(f"edgeinfer/{THING}/snapshot")[-1]
    assert jpeg.content_type == "image/jpeg" and jpeg.payload[:2] == b"\xff\xd8"
    assert len(jpeg.payload) == snap["result"]["bytes"] <= 128 * 1024
    bad = core.command(name, {"id": "x1", "command": "format_disk"})
    assert not bad["ok"] and "invalid command" in bad["error"]
    missing = str(demo_media[0].parent / "nope" / "model.onnx")  # where the local settings let a command point
    reload_bad = core.command(name, {"id": "r1", "command": "reload_model", "args": {"path": missing}})
    assert not reload_bad["ok"] and "model not changed" in reload_bad["error"]
    outside = core.command(name, {"id": "r2", "command": "reload_model", "args": {"path": "/etc/passwd"}})
    assert not outside["ok"] and "reload refused: path: /etc/passwd is outside remote.model_dirs" in outside["error"]


def test_update_deferred_during_model_warmup(core: Core, inference_recipe, model_recipe, model_artifact,
                                             demo_media) -> None:
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    cfg = dict(n.components[name].config)
    slow = {**cfg, "model": {**cfg["model"], "warmup_runs": 1000}}  # a model reload that takes seconds
    report = n.deploy_configuration(name, slow)
    assert report is not None and report.status == model.ConfigurationValidityStatus.ACCEPTED
    busy = n.wait_for(lambda: core.command(name, {"id": f"b{len(n.records)}", "command": "status"})["result"]
                      .get("swapping"), 60, "the model warm-up to start")  # not an inference in flight
    assert busy
    answers = n.component_update(max_wait_s=120)
    assert answers[0].recheck_after_ms > 0 and "warm-up" in answers[0].message
    assert answers[-1].recheck_after_ms == 0, "once the warm-up is over the update goes ahead"


def test_telemetry_waits_while_iot_core_is_disconnected(core: Core, inference_recipe, model_recipe, model_artifact,
                                                        demo_media) -> None:
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "telemetry flowing")
    n.set_connected(False)

    def frames_later(k: int) -> int:  # wait until k more frames were processed (local results keep flowing)
        local = len(n.requests("PublishToTopic"))
        n.wait_for(lambda: len(n.requests("PublishToTopic")) >= local + k, 30, "frames processed while offline")
        return len(n.iot_publishes(f"edgeinfer/{THING}/result"))

    settled = frames_later(10)  # publishes already in flight when the link dropped have landed
    assert frames_later(15) == settled, "nothing is handed to the nucleus while IoT Core is disconnected"
    n.set_connected(True)
    n.wait_for(lambda: len(n.iot_publishes(f"edgeinfer/{THING}/result")) >= settled + 15, 60, "the backlog sent")


def test_component_serves_metrics_and_health(core: Core, inference_recipe, model_recipe, model_artifact, demo_media,
                                             local_settings, tmp_path_factory) -> None:
    """On by default in the component (here on a free port, set by the local settings): /healthz, /readyz and
    /metrics answer from the running component; the server is announced in the state dir and withdrawn on stop."""
    import os
    import urllib.error
    import urllib.request

    from tests.conftest import trusting_operator

    local_settings({**trusting_operator(tmp_path_factory.getbasetemp()), "serve": {"listen": "127.0.0.1:0"}})
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    roots = [Path(os.environ["EDGEINFER_STATE_DIR"]), core.root]
    announced = core.nucleus.wait_for(lambda: [p for r in roots for p in r.rglob("serve.json")], 30, "serve.json")
    url = json.loads(announced[0].read_text())["url"]

    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url + path, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert get("/healthz")[0] == 200
    assert core.nucleus.wait_for(lambda: get("/readyz")[0] == 200, 30, "ready")
    assert core.nucleus.wait_for(lambda: b"edgeinfer_frames_total" in get("/metrics")[1], 30, "frames in /metrics")
    body = get("/metrics")[1].decode()
    assert 'edgeinfer_model_info{name="blazeface-full-range"' in body and "edgeinfer_transport_up" in body
    assert core.stop_all() == [0]
    assert not announced[0].exists(), "the announcement is withdrawn with the server"
    assert "Traceback" not in core.log(name)
