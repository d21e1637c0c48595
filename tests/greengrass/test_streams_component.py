"""Several streams per component and two inference components on one core (the fake nucleus, the real IPC
client, the components started from their rendered recipes): every frame of every stream is accounted for in
the telemetry, a deployment changes the streams in place, and each component has its own command channel and
local results topic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.greengrass import topics
from edgeinfer.greengrass.recipes.render import InferenceOptions, render_inference

from .conftest import BUCKET, VERSION, fast_config
from .harness import THING, Core

DOORS = "com.acme.Doors"


def streams(prefix: str, n: int, frames: int | None = None, fps: float = 20) -> list[dict[str, Any]]:
    count = f":{frames}" if frames else ""
    return [{"id": f"{prefix}{i}", "uri": f"synthetic:96x64{count}", "fps": fps} for i in range(n)]


def result_streams(core: Core, component: str | None = None) -> Counter[str]:
    """Result events per stream on the default component's telemetry topic, or on ``component``'s own."""
    topic = f"edgeinfer/{THING}/{component}/result" if component else f"edgeinfer/{THING}/result"
    return Counter(json.loads(r.payload).get("stream") for r in core.nucleus.iot_publishes(topic))


def test_streams_and_two_components_on_one_core(core: Core, model_recipe: dict[str, Any],
                                                model_artifact: tuple[Path, Any], demo_media: tuple[Path, Path]
                                                ) -> None:
    name = model_artifact[1].name
    default = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=name))
    doors = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=name, component_name=DOORS))
    core.install(model_recipe, [model_artifact[0]])
    base = fast_config(demo_media[0])
    del base["source"]
    n = core.nucleus
    # the default component: four finite streams of different lengths, every frame in the telemetry
    core.install(default, [], {**base, "sources": [{**s, "uri": f"synthetic:96x64:{5 + 3 * i}"}
                                                   for i, s in enumerate(streams("cam", 4))]})
    core.simulate_install(default)
    # a second inference component on the same core: eight live-paced streams, its own commands
    core.install(doors, [], {**base, "sources": streams("door", 8, fps=10)})
    core.simulate_install(doors)
    proc_default, proc_doors = core.start(default), core.start(doors)
    core.wait_state(DOORS, "RUNNING", proc_doors)
    expected = {f"cam{i}": 5 + 3 * i for i in range(4)}
    n.wait_for(lambda: all(result_streams(core)[k] >= v for k, v in expected.items()), 90, "every cam frame")
    proc_default.wait(60)  # the finite streams ended: the component finished
    counts = result_streams(core)
    assert counts == expected  # exactly: none lost, none twice, and none of the other component's
    doors_counts = n.wait_for(lambda: result_streams(core, DOORS) if all(
        result_streams(core, DOORS)[f"door{i}"] > 0 for i in range(8)) else None, 60, "the doors' own telemetry")
    assert set(doors_counts) == {f"door{i}" for i in range(8)}  # its own topic: edgeinfer/{thing}/{component}/...
    assert doors["ComponentConfiguration"]["DefaultConfiguration"]["telemetry"]["topic"] == \
        "edgeinfer/{device}/{component}/{type}"

    # commands go to one component only, on its own channel; it answers on its own reply topic
    status = core.command(DOORS, {"id": "d1", "command": "status"})
    assert status["ok"] and sorted(status["result"]["streams"]) == [f"door{i}" for i in range(8)]
    assert status["_request"].topic_name == topics.reply_topic(THING, DOORS) == f"edgeinfer/{THING}/{DOORS}/cmd/reply"
    assert not n.iot_publishes(f"edgeinfer/{THING}/cmd/reply")  # the default component never heard it
    snap = core.command(DOORS, {"id": "d2", "command": "snapshot", "args": {"stream": "door3"}})
    assert snap["ok"] and snap["result"]["stream"] == "door3"
    assert n.iot_publishes(f"edgeinfer/{THING}/{DOORS}/snapshot")[-1].payload[:2] == b"\xff\xd8"
    local = {r.topic for r in n.requests("PublishToTopic", DOORS)}
    assert local == {f"edgeinfer/{DOORS}/results"}
    assert {r.topic for r in n.requests("PublishToTopic", default["ComponentName"])} == {"edgeinfer/results"}

    # a deployment that keeps two of the eight streams and adds one: applied in place, no restart
    before = dict(n.components[DOORS].config)
    door0 = core.command(DOORS, {"id": "d3", "command": "status"})["result"]["streams"]["door0"]["frames"]
    new = [*streams("door", 2, fps=10), {"id": "gate", "uri": "synthetic:64x64", "fps": 10}]
    n.deploy_configuration(DOORS, {**before, "sources": new})

    def applied() -> bool:
        st = core.command(DOORS, {"id": f"s{len(n.records)}", "command": "status"})["result"]
        assert st["streams"]["door0"]["frames"] >= door0  # counted on: the pipeline was never rebuilt
        return sorted(st["streams"]) == ["door0", "door1", "gate"] and st["streams"]["gate"]["frames"] > 0

    assert n.wait_for(applied, 60, "the new streams running")
    health = n.wait_for(lambda: [json.loads(r.payload) for r in n.iot_publishes(f"edgeinfer/{THING}/{DOORS}/health")
                                 if "gate" in (json.loads(r.payload).get("run", {}).get("streams") or {})],
                        30, "a health event with the new streams")
    assert set(health[-1]["run"]["streams"]) == {"door0", "door1", "gate"}
    assert "Traceback" not in core.log(DOORS)


def test_one_camera_down_and_back_in_the_component(core: Core, model_recipe: dict[str, Any],
                                                   model_artifact: tuple[Path, Any], demo_media: tuple[Path, Path]
                                                   ) -> None:
    """A real RTSP camera of two streams goes away and comes back: the health telemetry says so for that stream
    alone, and the other stream's results never stop or start over."""
    from tests.faults.rtsp_server import RtspCamera, unavailable_reason

    if (why := unavailable_reason()) is not None:
        pytest.skip(why)
    cam = RtspCamera().start()
    try:
        default = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name))
        core.install(model_recipe, [model_artifact[0]])
        base = fast_config(demo_media[0])
        del base["source"]
        core.install(default, [], {**base, "sources": [{"id": "gate", "uri": cam.url},
                                                       {"id": "yard", "uri": "synthetic:96x64", "fps": 20}]})
        core.simulate_install(default)
        proc = core.start(default)
        name = default["ComponentName"]
        core.wait_state(name, "RUNNING", proc)
        n = core.nucleus
        n.wait_for(lambda: result_streams(core)["gate"] >= 3 and result_streams(core)["yard"] >= 3, 60, "both")

        def stream_health(state: str) -> dict[str, Any] | None:
            for r in reversed(n.iot_publishes(f"edgeinfer/{THING}/health")):
                streams = (json.loads(r.payload).get("run") or {}).get("streams") or {}
                if streams.get("gate", {}).get("state") == state:
                    return dict(streams)
            return None

        cam.stop()  # the outage
        down = n.wait_for(lambda: stream_health("waiting"), 30, "health saying the gate camera waits")
        assert down["yard"]["state"] == "running" and down["gate"]["reason"]
        yard_then = result_streams(core)["yard"]
        n.wait_for(lambda: result_streams(core)["yard"] >= yard_then + 20, 30, "the yard stream going on")
        cam.start()
        n.wait_for(lambda: stream_health("running"), 60, "health saying the gate camera is back")
        gate_then = result_streams(core)["gate"]
        n.wait_for(lambda: result_streams(core)["gate"] >= gate_then + 3, 30, "the gate camera's results again")
        yard = [json.loads(r.payload)["frame"] for r in n.iot_publishes(f"edgeinfer/{THING}/result")
                if json.loads(r.payload).get("stream") == "yard"]
        assert yard == list(range(len(yard)))  # one pipeline throughout: never restarted, nothing lost
        assert "Traceback" not in core.log(name)
    finally:
        cam.stop()
