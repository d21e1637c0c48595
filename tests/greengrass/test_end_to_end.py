"""End to end: register -> approve -> publish -> deploy (control-plane fake) -> the component on the fake
nucleus -> telemetry as PublishToIoTCore requests carrying the new model version; then a second
registry version rolls out through the same steps and the device reports it."""

from __future__ import annotations

import json
import threading

from edgeinfer.cloud.aws import deploy, progress, registry
from edgeinfer.cloud.aws.publish import publish

from .conftest import BUCKET, add_core_device, fast_config
from .fakes.device import DeviceAgent
from .harness import THING
from .test_cloud_publish import runtime_dir

GROUP = "faces"


def roll_out(aws, agent: DeviceAgent, merge=None) -> list[progress.DeviceProgress]:
    p = deploy.create(aws, deploy.plan(aws, "cameras", GROUP, config_merge=merge))
    done = threading.Event()
    failure: list[BaseException] = []

    def device() -> None:
        try:
            agent.apply_next()
        except BaseException as exc:  # surfaced in the main thread below
            failure.append(exc)
        finally:
            done.set()

    polls_after_device: list[float] = []

    def sleep(seconds: float) -> None:
        """The watch's wait between polls: until the device is done; a device-side failure is raised at
        once, and a device that is done while the deployment stays unfinished fails on the next poll
        (a set Event would otherwise make the watch spin until its timeout)."""
        done.wait(seconds)
        if failure:
            raise failure[0]
        if not done.is_set():
            return
        if polls_after_device:
            raise AssertionError("the device applied the deployment, but it never reached a terminal status")
        polls_after_device.append(seconds)

    threading.Thread(target=device, daemon=True).start()
    final = progress.watch(aws, p.target, p.deployment_id, timeout_s=120, poll_s=30, sleep=sleep)
    if failure:
        raise failure[0]
    return final


def model_versions_seen(core) -> set[str]:
    return {json.loads(r.payload)["model_version"] for r in core.nucleus.iot_publishes(f"edgeinfer/{THING}/+")
            if r.topic_name.rsplit("/", 1)[-1] in ("result", "health", "summary")}


def test_registry_to_device_telemetry(aws, core, demo_pkgs, demo_media, tmp_path) -> None:
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET)
    registry.approve(aws, GROUP, 1)
    first = publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))
    add_core_device(aws, THING, "cameras")
    agent = DeviceAgent(aws.greengrass, aws.s3, core, THING, tmp_path / "downloads")

    final = roll_out(aws, agent, fast_config(demo_media[0]))
    assert [(d.device, d.status) for d in final] == [(THING, "SUCCEEDED")]
    n = core.nucleus
    n.wait_for(lambda: "1.0.0" in model_versions_seen(core), 60, "telemetry from model 1.0.0")
    published = n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "result events")[0]
    assert {p.key: p.value for p in published.user_properties}["model_version"] == "1.0.0"

    # a new registry version: published as model component 2.0.0, rolled out with the same steps
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved")
    second = publish(aws, GROUP, BUCKET)
    assert second.model_version == "2.0.0" and second.inference_version == first.inference_version
    before = len(n.iot_publishes(f"edgeinfer/{THING}/+"))
    final = roll_out(aws, agent)
    assert [(d.device, d.status) for d in final] == [(THING, "SUCCEEDED")]

    def new_version_events() -> list[dict]:
        fresh = n.iot_publishes(f"edgeinfer/{THING}/+")[before:]
        return [e for e in (json.loads(r.payload) for r in fresh if not r.topic_name.endswith("/cmd/reply"))
                if e.get("model_version") == "2.0.0"]

    events = n.wait_for(new_version_events, 60, "telemetry carrying model 2.0.0")
    assert events[0]["device"] == THING
    status = progress.device_status(aws, deploy.resolve(aws, "cameras"))
    assert status[0].model == "faces 2.0.0" and status[0].inference.startswith(first.inference_version)
    merge = json.loads(aws.greengrass.deployments[max(aws.greengrass.deployments, key=lambda k: aws.greengrass
                       .deployments[k]["creationTimestamp"])]["components"]["com.edgeinfer.Inference"]
                       ["configurationUpdate"]["merge"])
    assert merge["source"]["uri"] == str(demo_media[0]), "the second deployment kept the target's configuration"
