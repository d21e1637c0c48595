"""ModuleOutputTransport with the wire swapped (a recording module client): properties, outputs, size limit,
failures and timeouts. The same transport runs end to end in test_module_runtime.py."""

from __future__ import annotations

import gzip
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgeinfer.azure.transport import ModuleOutputTransport, Outputs
from edgeinfer.core.telemetry.transport import Message

pytest.importorskip("azure.iot.device", reason="azure-iot-device not installed")


@dataclass
class RecordingClient:
    connected: bool = True
    sent: list[tuple[Any, str]] = field(default_factory=list)
    fail_after: int | None = None
    block: threading.Event | None = None
    on_connection_state_change: Any = None

    def send_message_to_output(self, message: Any, output_name: str) -> None:
        if self.block is not None:
            self.block.wait(10)
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("edgeHub went away")
        self.sent.append((message, output_name))

    def shutdown(self) -> None:
        self.connected = False


def event(key: int, type_: str = "result", **kw: Any) -> Message:
    payload = json.dumps({"v": 1, "type": type_, "id": f"id{key}", "device": "cam-01"}).encode()
    return Message(key=key, topic="ignored", payload=kw.pop("payload", payload), event_type=type_,
                   model_version="1.0.0", **kw)


def test_properties_and_outputs() -> None:
    client = RecordingClient()
    t = ModuleOutputTransport(client, Outputs(telemetry="tele", alerts="alarm"))  # type: ignore[arg-type]
    t.open()
    batch = b"[" + event(9).payload + b"," + event(10).payload + b"]"
    msgs = [event(1), event(2, "alert"), event(3, payload=gzip.compress(event(3).payload), encoding="gzip"),
            event(4, payload=batch, count=2, batch=True)]
    result = t.send(msgs, 5)
    assert result.acked == {1, 2, 3, 4} and not result.rejected and result.error is None
    (m1, o1), (_, o2), (m3, o3), (m4, o4) = client.sent
    assert (o1, o2, o3, o4) == ("tele", "alarm", "tele", "tele")
    assert m1.message_id == "id1" and m1.content_type == "application/json" and m1.content_encoding == "utf-8"
    assert m1.custom_properties == {"type": "result", "model_version": "1.0.0", "schema": "1", "count": "1"}
    assert m3.content_encoding == "gzip" and m3.message_id is None
    assert m4.message_id == "id9+2" and m4.custom_properties["count"] == "2"
    assert t.status().connected
    t.close()


def test_oversized_message_is_refused_for_good() -> None:
    client = RecordingClient()
    t = ModuleOutputTransport(client)  # type: ignore[arg-type]
    result = t.send([event(1, payload=b"x" * (260 * 1024)), event(2)], 5)
    assert 1 in result.rejected and "IoT Hub takes 262144" in result.rejected[1]
    assert result.acked == {2} and len(client.sent) == 1
    t.close()


def test_failure_stops_the_round_and_keeps_the_rest() -> None:
    client = RecordingClient(fail_after=1)
    t = ModuleOutputTransport(client)  # type: ignore[arg-type]
    result = t.send([event(1), event(2), event(3)], 5)
    assert result.acked == {1} and "edgeHub went away" in str(result.error)
    t.close()


def test_unacknowledged_send_times_out_and_transport_reopens() -> None:
    gate = threading.Event()
    client = RecordingClient(block=gate)
    t = ModuleOutputTransport(client)  # type: ignore[arg-type]
    result = t.send([event(1)], 0.2)
    assert result.acked == set() and "did not acknowledge within" in str(result.error)
    gate.set()
    t.close()
    client.block = None
    t.open()
    assert t.send([event(2)], 5).acked == {2}
    t.close()


def test_disconnected_client_shows_in_status() -> None:
    client = RecordingClient(connected=False)
    t = ModuleOutputTransport(client)  # type: ignore[arg-type]
    assert not t.status().connected and not t.wait_connected(0.01)
    client.connected = True
    t.connection_changed()
    assert t.status().connected


def test_from_uri_checks_options_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeinfer.azure.errors import ModuleError
    from edgeinfer.core.errors import ConfigError
    from edgeinfer.core.telemetry.config import TelemetryConfig

    for name in [k for k in os.environ if k.startswith("IOTEDGE_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match="unknown option"):
        ModuleOutputTransport.from_uri("iotedge:?colour=red", TelemetryConfig(), "cam-01")
    with pytest.raises(ModuleError, match="not running under IoT Edge"):
        ModuleOutputTransport.from_uri("iotedge:?alerts=alarm", TelemetryConfig(), "cam-01")
