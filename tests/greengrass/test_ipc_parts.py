"""Component parts in-process against the fake nucleus, through the real GreengrassCoreIPCClientV2:
the transport's refusals, component metrics for aws.* components, and a failed start (ERRORED)."""

from __future__ import annotations

import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ConfigError
from edgeinfer.core.session import RunSession
from edgeinfer.core.telemetry.transport import Message
from edgeinfer.greengrass.app import ComponentApp
from edgeinfer.greengrass.connection import IotCoreConnection
from edgeinfer.greengrass.metrics import MetricsReporter
from edgeinfer.greengrass.transport import IpcTransport

from .fake_nucleus import FakeNucleus
from .harness import THING

TELEMETRY = {"p": {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": [f"edgeinfer/{THING}/+"]}}
METRICS = {"m": {"operations": ["aws.greengrass#PutComponentMetric"], "resources": ["*"]}}


def client(n: FakeNucleus, component: str, acl: dict, monkeypatch: pytest.MonkeyPatch) -> GreengrassCoreIPCClientV2:
    n.add_component(component, {"accessControl": acl})
    for k, v in n.environment(component).items():
        monkeypatch.setenv(k, v)
    return GreengrassCoreIPCClientV2()


def msg(key: int, topic: str) -> Message:
    return Message(key=key, topic=topic, payload=b'{"v":1}', event_type="result", model_version="3.0.0")


def test_transport_acks_refuses_for_good_and_follows_the_link(nucleus, monkeypatch) -> None:
    ipc = client(nucleus, "com.edgeinfer.Inference", {"aws.greengrass.ipc.mqttproxy": TELEMETRY}, monkeypatch)
    conn = IotCoreConnection(ipc)
    transport = IpcTransport(ipc, conn.follow())
    try:
        assert transport.wait_connected(10)
        result = transport.send([msg(1, f"edgeinfer/{THING}/result"), msg(2, "not/ours")], timeout_s=10)
        assert result.acked == {1} and "UnauthorizedError" in result.rejected[2]
        sent = nucleus.iot_publishes(f"edgeinfer/{THING}/result")[0]
        assert {p.key: p.value for p in sent.user_properties} == {
            "type": "result", "model_version": "3.0.0", "schema": "1", "count": "1"}
        nucleus.set_connected(False)
        nucleus.wait_for(lambda: not transport.status().connected, 10, "the link reported down")
        nucleus.set_connected(True)
        assert transport.wait_connected(10)
    finally:
        conn.close()
        ipc.close()


def test_component_metrics_for_aws_components_and_refusal_for_others(nucleus, monkeypatch, demo_pkgs,
                                                                      demo_media) -> None:
    # the stats a real run reports (every stage and "total", the frame's age at its result)
    session = RunSession(EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[0])}))
    session.start()
    assert session.wait(60)
    stats = session.stats()
    session.stop(0)
    stages = stats["stages_ms"]
    assert {"read", "infer", "total"} <= set(stages)
    ours = client(nucleus, "com.edgeinfer.Inference", {}, monkeypatch)
    reporter = MetricsReporter(ours, lambda: stats)
    assert reporter.report() is False and reporter.enabled is False  # the nucleus allows only aws.* names
    ours.close()
    aws = client(nucleus, "aws.edgeinfer.Test", {"aws.greengrass.ipc.componentmetric": METRICS}, monkeypatch)
    reporter = MetricsReporter(aws, lambda: stats)
    assert reporter.report() and reporter.report()
    sent = {m.name: (m.unit, m.value) for m in nucleus.requests("PutComponentMetric", "aws.edgeinfer.Test")[-1].metrics}
    assert sent["infer_s_p50"] == ("SECONDS", round(stages["infer"]["p50"] / 1e3, 6))
    assert sent["latency_s_p50"] == ("SECONDS", round(stages["total"]["p50"] / 1e3, 6)), "the frame's age, not a sum"
    assert sent["frames"] == ("COUNT", float(stats["frames"])) and sent["fps"][0] == "COUNT_PER_SECOND"
    aws.close()


def test_invalid_configuration_at_start_reports_errored(nucleus, monkeypatch) -> None:
    ipc = client(nucleus, "com.edgeinfer.Inference", {}, monkeypatch)
    nucleus.components["com.edgeinfer.Inference"].config["pipeline"] = {"queue_size": 0}
    app = ComponentApp(ipc, THING, None)
    try:
        with pytest.raises(ConfigError, match=r"pipeline\.queue_size"):
            app.start()
        assert nucleus.components["com.edgeinfer.Inference"].state == "ERRORED"
    finally:
        ipc.close()
