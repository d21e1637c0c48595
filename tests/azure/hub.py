"""A test-side IoT Hub / edgeHub: answers the module client's twin requests and invokes its direct methods
on the ``$iothub/...`` topics of a plain broker, and collects what the module sends to its outputs.

Topics (what edgeHub speaks to modules over MQTT 3.1.1):
* ``$iothub/twin/GET/?$rid=R`` -> ``$iothub/twin/res/200/?$rid=R`` with ``{desired, reported}``;
* ``$iothub/twin/PATCH/properties/reported/?$rid=R`` -> ``$iothub/twin/res/204/?$rid=R&$version=N``;
* desired patches go out on ``$iothub/twin/PATCH/properties/desired/?$version=N``;
* methods go out on ``$iothub/methods/POST/{name}/?$rid=R``; answers come on
  ``$iothub/methods/res/{status}/?$rid=R``;
* outputs arrive on ``devices/{d}/modules/{m}/messages/events/{url-encoded properties}``.

Works with paho-mqtt 1.x (what azure-iot-device pins) and 2.x alike.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt

from edgeinfer.core.config import deep_merge

T = TypeVar("T")


def paho_client(client_id: str) -> mqtt.Client:
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt >= 2
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)


def merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Twin semantics (JSON merge patch, RFC 7396): objects merge, null deletes."""
    return deep_merge(doc, patch)


def parse_props(segment: str) -> dict[str, str | None]:
    """``%24.on=telemetry&type=alert`` -> {"$.on": "telemetry", "type": "alert"} (no '+' decoding, as the SDK)."""
    props: dict[str, str | None] = {}
    for entry in filter(None, segment.split("&")):
        key, sep, value = entry.partition("=")
        props[urllib.parse.unquote(key)] = urllib.parse.unquote(value) if sep else None
    return props


@dataclass
class OutputMessage:
    topic: str
    props: dict[str, str | None]
    payload: bytes

    @property
    def output(self) -> str | None:
        return self.props.get("$.on")

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class FakeHub:
    host: str
    port: int
    device_id: str
    module_id: str
    desired: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    desired_version: int = 1
    reported_version: int = 1
    twin_gets: int = 0
    reported_patches: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[OutputMessage] = field(default_factory=list)
    _method_answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _rids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _client: mqtt.Client | None = None

    # -- connection ------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> FakeHub:
        client = paho_client(f"test-hub-{id(self)}")
        connected, subscribed = threading.Event(), threading.Event()
        client.on_connect = lambda *a: connected.set()
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = self._on_message
        client.connect(self.host, self.port)
        client.loop_start()
        self._client = client
        if not connected.wait(timeout_s):
            raise RuntimeError("test hub could not connect to the broker")
        events = f"devices/{self.device_id}/modules/{self.module_id}/messages/events/#"
        client.subscribe([("$iothub/twin/#", 1), ("$iothub/methods/res/#", 1), (events, 1)])
        if not subscribed.wait(timeout_s):
            raise RuntimeError("test hub got no SUBACK")
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _publish(self, topic: str, data: bytes, wait: bool = True) -> None:
        assert self._client is not None
        info = self._client.publish(topic, data, qos=1)
        if wait:  # never from a callback: it runs on the network thread that would process the PUBACK
            info.wait_for_publish(10)

    # -- what the module sends -------------------------------------------------------------------
    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        topic: str = msg.topic
        if topic.startswith("$iothub/twin/GET/"):
            rid = parse_props(topic.split("?", 1)[1])["$rid"]
            with self._cond:
                self.twin_gets += 1
                twin = {"desired": {**self.desired, "$version": self.desired_version},
                        "reported": {**self.reported, "$version": self.reported_version}}
                self._cond.notify_all()
            self._publish(f"$iothub/twin/res/200/?$rid={rid}", json.dumps(twin).encode(), wait=False)
        elif topic.startswith("$iothub/twin/PATCH/properties/reported/"):
            rid = parse_props(topic.split("?", 1)[1])["$rid"]
            patch = json.loads(msg.payload)
            with self._cond:
                self.reported = merge_patch(self.reported, patch)
                self.reported_version += 1
                self.reported_patches.append(patch)
                version = self.reported_version
                self._cond.notify_all()
            self._publish(f"$iothub/twin/res/204/?$rid={rid}&$version={version}", b"", wait=False)
        elif topic.startswith("$iothub/methods/res/"):
            status = int(topic.split("/")[3])
            rid = parse_props(topic.split("?", 1)[1])["$rid"]
            payload = json.loads(msg.payload) if msg.payload else None
            with self._cond:
                self._method_answers[str(rid)] = (status, payload)
                self._cond.notify_all()
        elif "/messages/events/" in topic:
            segment = topic.split("/messages/events/", 1)[1]
            with self._cond:
                self.outputs.append(OutputMessage(topic, parse_props(segment), bytes(msg.payload)))
                self._cond.notify_all()

    def wait_for(self, probe: Callable[[FakeHub], T | None], timeout_s: float = 30.0, what: str = "") -> T:
        """Block until ``probe(self)`` returns something truthy (checked on every message)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not (found := probe(self)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or probe}; reported={self.reported}")
                self._cond.wait(left)
            return found

    def wait_reported(self, probe: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0,
                      what: str = "") -> dict[str, Any]:
        return self.wait_for(lambda h: copy.deepcopy(h.reported) if probe(h.reported) else None, timeout_s, what)

    # -- what the cloud sends --------------------------------------------------------------------
    def patch_desired(self, patch: dict[str, Any]) -> int:
        with self._cond:
            self.desired = merge_patch(self.desired, patch)
            self.desired_version += 1
            version = self.desired_version
        self._publish(f"$iothub/twin/PATCH/properties/desired/?$version={version}",
                      json.dumps({**patch, "$version": version}).encode())
        return version

    def invoke(self, method: str, payload: Any = None, timeout_s: float = 30.0) -> tuple[int, Any]:
        rid = str(next(self._rids))
        self._publish(f"$iothub/methods/POST/{method}/?$rid={rid}", json.dumps(payload).encode())
        return self.wait_for(lambda h: h._method_answers.pop(rid, None), timeout_s, f"method {method} answer")
