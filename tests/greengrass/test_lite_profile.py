"""The component on a nucleus that lacks operations: the fake nucleus in its Greengrass Lite profile answers
ServiceError to validation events, validity reports, component updates, deferrals, metrics and connection
status, has no spooler, and (without systemd) fails UpdateState. Each part is driven through the real
GreengrassCoreIPCClientV2; the last test runs the whole component process from its recipe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from edgeinfer.core.telemetry.transport import Message
from edgeinfer.greengrass.connection import IotCoreConnection
from edgeinfer.greengrass.lifecycle import StateReporter
from edgeinfer.greengrass.metrics import MetricsReporter
from edgeinfer.greengrass.nucleus import NucleusFeatures
from edgeinfer.greengrass.transport import IpcTransport
from edgeinfer.greengrass.updates import UpdateGate

from .conftest import fast_config
from .fake_nucleus import FakeNucleus
from .fake_nucleus.profiles import LITE, LITE_UNSUPPORTED, LITE_WITHOUT_SYSTEMD
from .harness import THING, Core, short_socket_dir

NAME = "com.edgeinfer.Inference"
TELEMETRY = {"p": {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": [f"edgeinfer/{THING}/+"]}}


@pytest.fixture
def lite(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeNucleus, GreengrassCoreIPCClientV2]]:
    n = FakeNucleus(str(short_socket_dir() / "ipc.socket"), THING, LITE_WITHOUT_SYSTEMD)
    n.start()
    n.add_component(NAME, {"accessControl": {"aws.greengrass.ipc.mqttproxy": TELEMETRY}})
    for k, v in n.environment(NAME).items():
        monkeypatch.setenv(k, v)
    ipc = GreengrassCoreIPCClientV2()
    yield n, ipc
    ipc.close()
    n.stop()


class Busy:
    busy = False

    def wait_idle(self, timeout_s: float) -> bool:
        return True


def test_optional_operations_are_tried_once_and_recorded(lite) -> None:
    n, ipc = lite
    features = NucleusFeatures()
    assert IotCoreConnection(ipc, features).follow() is None
    gate = UpdateGate(ipc, Busy(), nucleus=features)
    gate.subscribe()  # no exception: nothing to defer on this nucleus
    reporter = MetricsReporter(ipc, lambda: {"frames": 3}, nucleus=features)
    assert reporter.report() is False and reporter.report() is False
    assert features.state() == {"missing": ["PutComponentMetric", "SubscribeToComponentUpdates",
                                            "SubscribeToIoTCoreConnectionStatus"]}
    for op in ("PutComponentMetric", "SubscribeToComponentUpdates", "SubscribeToIoTCoreConnectionStatus"):
        assert len(n.requests(op, NAME)) == 1, f"{op} is tried once, not again"
    gate.close()


def test_update_state_is_retried_until_the_nucleus_takes_it(lite) -> None:
    n, ipc = lite
    features = NucleusFeatures()
    state = StateReporter(ipc, features, first_delay_s=0.05, max_delay_s=0.2)
    try:
        assert state.report("RUNNING") is False  # no health daemon: refused, but the component goes on
        assert features.state()["missing"] == ["UpdateState"]
        n.wait_for(lambda: len(n.requests("UpdateState", NAME)) >= 3, 10, "UpdateState sent again")
        n.profile = LITE  # the health daemon came up
        n.wait_for(lambda: state.reported == "RUNNING", 10, "the retried RUNNING taken")
        assert n.components[NAME].state == "RUNNING" and features.state()["missing"] == []
    finally:
        state.close()


def test_without_connection_status_the_deliveries_tell_the_link(lite) -> None:
    n, ipc = lite
    transport = IpcTransport(ipc, IotCoreConnection(ipc, NucleusFeatures()).follow(), probe_s=(0.1, 0.2))

    def send(key: int) -> Any:
        return transport.send([Message(key=key, topic=f"edgeinfer/{THING}/result", payload=b'{"v":1}',
                                       event_type="result", model_version="1.0.0")], timeout_s=10)

    assert transport.status().connected and send(1).acked == {1}
    n.set_connected(False)  # iotcored offline: Lite has no spooler, the publish fails
    failed = send(2)
    assert not failed.acked and "ServiceError" in (failed.error or "")
    status = transport.status()
    assert not status.connected and "not connected to AWS IoT Core" in (status.error or "")
    assert transport.wait_connected(5), "after the pause the transport tries again"
    n.set_connected(True)
    assert send(3).acked == {3} and transport.status() == type(status)(connected=True, error=None)


def start(core: Core, inference_recipe: dict[str, Any], model_recipe: dict[str, Any], model_artifact: Any,
          frames: Path) -> Any:
    core.install(model_recipe, [model_artifact[0]])
    core.install(inference_recipe, [], fast_config(frames))
    core.simulate_install(inference_recipe)
    return core.start(inference_recipe)


def health(n: FakeNucleus, predicate: Any, what: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for r in reversed(n.iot_publishes(f"edgeinfer/{THING}/health")):
            event = json.loads(r.payload)
            if predicate(event.get("nucleus") or {}):
                return event
        return None

    return n.wait_for(found, 60, what)


def test_component_on_lite_without_systemd(tmp_path: Path, inference_recipe, model_recipe, model_artifact,
                                           demo_media) -> None:
    core = Core.create(tmp_path / "greengrass", profile=LITE_WITHOUT_SYSTEMD)
    try:
        proc = start(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
        n = core.nucleus
        n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 90, "result telemetry")
        assert proc.poll() is None, core.log(NAME)[-3000:]
        every = sorted(LITE_UNSUPPORTED - {"SendConfigurationValidityReport", "DeferComponentUpdate"} |
                       {"UpdateState"})  # the other two follow events this nucleus never sends
        first = health(n, lambda nuc: nuc.get("missing") == every, "health listing what the nucleus lacks")
        assert first["run"]["state"] == "running"
        for op in every:
            if op != "UpdateState":
                assert len(n.requests(op, NAME)) == 1, f"{op} tried once"
        # a bad configuration: no validation on this nucleus, so it arrives, and is refused there
        before = dict(n.components[NAME].config)
        report = n.deploy_configuration(NAME, {**before, "pipeline": {**before["pipeline"], "queue_size": 0}})
        assert report is None, "Lite asks nobody before it changes the configuration"
        refused = health(n, lambda nuc: "pipeline.queue_size" in (nuc.get("config_refused") or ""),
                         "health reporting the refused configuration")
        assert refused["run"]["state"] == "running"
        status = core.command(NAME, {"id": "s1", "command": "status"})
        assert status["ok"] and status["result"]["running"] and status["result"]["config_version"] == 0
        assert "pipeline.queue_size" in status["result"]["nucleus"]["config_refused"]
        # a good one after it is applied, and the refusal is history
        n.deploy_configuration(NAME, {**before, "model": {**before["model"], "score_threshold": 0.8}})
        n.wait_for(lambda: core.command(NAME, {"id": f"g{len(n.records)}", "command": "status"})["result"]
                   ["config_version"] >= 1, 60, "the good configuration applied")
        after = core.command(NAME, {"id": "s2", "command": "status"})["result"]["nucleus"]
        assert "config_refused" not in after and after["missing"] == every
        assert core.stop_all() == [0], "SIGTERM: a clean exit, no optional operation ended the process"
        log = core.log(NAME)
        assert "Traceback" not in log
        for op in every:
            assert log.count(f"this nucleus does not offer {op} ") == 1, f"{op} logged once"
    finally:
        core.stop_all()
