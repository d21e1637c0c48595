"""The inference component on a real Greengrass Lite nucleus, through the real GreengrassCoreIPCClientV2:
started from its rendered recipe by Lite's recipe-runner, configuration read from ggconfigd, telemetry
through iotcored to the broker, a command received through SubscribeToIoTCore, a configuration update
applied, a bad one refused, the operations Lite lacks done without, SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from awsiot.greengrasscoreipc import connect
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from edgeinfer.greengrass.artifacts import build_model_artifact
from edgeinfer.greengrass.recipes import InferenceOptions, render_inference, render_model
from edgeinfer.greengrass.recipes.lite import lite_problems
from edgeinfer.greengrass.recipes.platforms import select
from tests.telemetry.mosquitto import Subscriber

from .conftest import THING
from .nucleus import LiteCore

NAME = "com.edgeinfer.Inference"
#: what Greengrass Lite 2.6 answers ServiceError to (and UpdateState: no health daemon without systemd)
LITE_LACKS = ["PutComponentMetric", "SubscribeToComponentUpdates", "SubscribeToIoTCoreConnectionStatus",
              "SubscribeToValidateConfigurationUpdates", "UpdateState"]


def deploy(lite: LiteCore, demo_pkgs: tuple[Path, Path], frames: Path, tmp_path: Path) -> dict[str, Any]:
    zip_path = tmp_path / "model.zip"
    _, info = build_model_artifact(demo_pkgs[0], zip_path)
    model = render_model(info.name, "1.0.0", "amzn-s3-demo-bucket", info)
    inference = render_inference(InferenceOptions(version="0.1.0", bucket="amzn-s3-demo-bucket", model=info.name,
                                                  defaults="minimal"),
                                 select(["linux-amd64"]))  # one platform, minimal defaults: what Lite reads
    assert lite_problems(inference) == [] and lite_problems(model) == []
    lite.install(model, zip_artifacts=(zip_path,))
    lite.install(inference, {"source": {"uri": str(frames), "loop": True, "fps": 10},
                             "telemetry": {"mode": "results", "window_s": 1.0, "health_interval_s": 2.0,
                                           "retry": {"initial_s": 0.05, "max_s": 0.5}},
                             "model": {"warmup_runs": 1}})
    lite.simulate_install(inference)
    return inference


def health(observer: Subscriber, predicate: Any, timeout_s: float, what: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def match(received: list[Any]) -> bool:
        for r in reversed(received):
            if r.topic == f"edgeinfer/{THING}/health":
                event = r.events()[0]
                if predicate(event):
                    found.append(event)
                    return True
        return False

    assert observer.wait_for(match, timeout_s), f"no health event with {what}"
    return found[0]


def command(port: int, observer: Subscriber, body: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    """Publish a command from 'the cloud' (the broker) and wait for the reply that IoT Core would carry back."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"cloud-{body['id']}", protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(f"edgeinfer/{THING}/cmd", json.dumps(body), qos=1).wait_for_publish(10)
        replies: list[dict[str, Any]] = []

        def answered(received: list[Any]) -> bool:
            for r in received:
                if r.topic == f"edgeinfer/{THING}/cmd/reply" and json.loads(r.payload).get("id") == body["id"]:
                    replies.append(json.loads(r.payload))
                    return True
            return False

        assert observer.wait_for(answered, timeout_s), f"no reply to {body}"
        return replies[0]
    finally:
        client.loop_stop()
        client.disconnect()


def as_component(lite: LiteCore) -> GreengrassCoreIPCClientV2:
    """An IPC client holding the component's own identity (what a deployment changes through)."""
    return GreengrassCoreIPCClientV2(client=connect(ipc_socket=lite.ipc_socket, authtoken=lite.svcuid(NAME)))


def test_component_on_greengrass_lite(lite: LiteCore, demo_pkgs, demo_media, tmp_path: Path) -> None:
    deploy(lite, demo_pkgs, demo_media[0], tmp_path)
    lite.start()
    observer = Subscriber(lite.broker.port, "edgeinfer/#", client_id="test-cloud").start()
    started = time.monotonic()
    proc = lite.start_component(NAME)
    try:
        # configuration read (telemetry mode 'results' is the deployment's, not the default), telemetry through
        # iotcored to the broker, the component running although Lite lacks operations
        assert observer.wait_for(lambda rs: any(r.topic == f"edgeinfer/{THING}/result" for r in rs), 120), (
            lite.component_log(NAME)[-4000:] + lite.logs())
        first_result_s = time.monotonic() - started
        event = next(r for r in observer.received if r.topic == f"edgeinfer/{THING}/result").events()[0]
        assert event["device"] == THING and event["model_version"] == "1.0.0" and event["seq"] >= 1
        first = health(observer, lambda e: (e.get("nucleus") or {}).get("missing") == LITE_LACKS, 60,
                       "nucleus.missing listing what Lite lacks")
        assert first["run"]["state"] == "running"
        # a command received through SubscribeToIoTCore, answered through PublishToIoTCore
        status = command(lite.broker.port, observer, {"id": "s1", "command": "status"})
        assert status["ok"] and status["result"]["running"] and status["result"]["config_version"] == 0
        deployer = as_component(lite)
        try:
            # a configuration update, applied (Lite changes it, then tells the component)
            deployer.update_configuration(key_path=["model"], value_to_merge={"score_threshold": 0.8},
                                          timestamp=dt.datetime.now(dt.timezone.utc))
            applied = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                applied = command(lite.broker.port, observer, {"id": f"a{time.monotonic_ns()}", "command": "status"})
                if applied["result"]["config_version"] >= 1:
                    break
            assert applied is not None and applied["result"]["config_version"] == 1, applied
            # a bad one: no validation on Lite, so it arrives, and is refused there; the running one stays
            deployer.update_configuration(key_path=["pipeline"], value_to_merge={"queue_size": 0},
                                          timestamp=dt.datetime.now(dt.timezone.utc))
            refused = health(observer, lambda e: "pipeline.queue_size" in
                             ((e.get("nucleus") or {}).get("config_refused") or ""), 60, "the refusal")
            assert refused["run"]["state"] == "running"
        finally:
            deployer.close()
        after = command(lite.broker.port, observer, {"id": "s2", "command": "status"})["result"]
        assert after["running"] and after["config_version"] == 1
        assert "pipeline.queue_size" in after["nucleus"]["config_refused"]
        # SIGTERM: telemetry drained, a clean exit
        assert lite.stop_component(proc) == 0
        log = lite.component_log(NAME)
        assert "Traceback" not in log and "terminate called" not in log, log[-4000:]
        for op in LITE_LACKS:
            assert f"this nucleus does not offer {op} " in log
        log_ = logging.getLogger(__name__)
        log_.info("greengrass-lite: first result at the broker %.1fs after the unit started", first_result_s)
    finally:
        observer.stop()
