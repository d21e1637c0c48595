"""MQTT5 telemetry transport over awscrt: QoS 1, an event leaves the outbox only after its PUBACK.

Each message carries content type ``application/json`` and user properties ``type``,
``model_version``, ``schema`` and ``count`` (events in the payload; a batch is a JSON array), plus
``content-encoding: gzip`` when gzipped. PUBACK reason codes >= 0x80 mean the broker refused the
message for good (not authorised, topic or payload invalid): those events are dropped with a clear
error; QUOTA_EXCEEDED (0x97) and PACKET_IDENTIFIER_IN_USE (0x91) are retried.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from awscrt import mqtt5

from ..core.errors import TelemetryError
from ..core.telemetry.config import TelemetryConfig
from ..core.telemetry.events import SCHEMA_VERSION
from ..core.telemetry.limits import MAX_PAYLOAD_BYTES
from ..core.telemetry.transport import ConnectionWatch, LinkStatus, Message, SendResult, Transport
from .client import ClientFactory, ClientHooks, build_client
from .endpoint import MqttEndpoint, parse_uri
from .tls_check import diagnose_tls

log = logging.getLogger(__name__)
RETRYABLE = {mqtt5.PubackReasonCode.QUOTA_EXCEEDED, mqtt5.PubackReasonCode.PACKET_IDENTIFIER_IN_USE}
_FIX = "events wait in the outbox and are sent once the broker is reachable"
_CAUSES = {
    "AWS_IO_SOCKET_CONNECTION_REFUSED": ("refused the TCP connection (is the broker running?)",
                                         "check host and port in the telemetry URI"),
    "AWS_IO_SOCKET_TIMEOUT": ("did not answer in time", "check the network path and the port"),
    "AWS_IO_DNS_INVALID_NAME": ("has a name that does not resolve", "check the host name"),
    "AWS_IO_DNS_QUERY_FAILED": ("has a name that does not resolve", "check the host name and DNS"),
    "AWS_ERROR_MQTT5_CONNACK_TIMEOUT": ("sent no CONNACK in time", "check the broker is an MQTT5 broker"),
}
_TLS_FIX = "check ca= is the CA that signed the broker's certificate and cert=/key= are a device pair it trusts"


class InFlight:
    """QoS 1 publishes awaiting their PUBACKs: ``futures[i]`` carries message ``keys[i]``."""

    def __init__(self, where: str, deadline: float, timeout_s: float) -> None:
        self.where = where
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.keys: list[int] = []
        self.futures: list[concurrent.futures.Future[Any]] = []
        self.error: str | None = None

    def wait(self) -> SendResult:
        result = SendResult(error=self.error)
        if not self.futures:
            return result
        # The broker acknowledges in order: wait for the last PUBACK, so the waiting thread wakes once
        # per batch instead of once per PUBACK (each wake-up takes the GIL from the client's callbacks).
        concurrent.futures.wait(self.futures[-1:], self._left())
        acked = result.acked
        for key, future in zip(self.keys, self.futures, strict=True):
            try:
                done = future.result(self._left())
            except concurrent.futures.TimeoutError:
                result.error = f"no PUBACK from {self.where} within {self.timeout_s:g}s"
                continue
            except Exception as exc:  # AwsCrtError: disconnected, ack timeout, client stopped
                result.error = f"publish to {self.where} failed: {getattr(exc, 'name', exc)}"
                continue
            code = done.puback.reason_code if done.puback is not None else None
            if code is None or code < 0x80:
                acked.add(key)
            elif code in RETRYABLE:
                result.error = f"broker answered {code.name}"
            else:
                result.rejected[key] = f"PUBACK {code.name} (0x{int(code):02x})"
        return result

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class MqttTransport(Transport):
    scheme: ClassVar[str] = "mqtt"
    supports_batches: ClassVar[bool] = True
    supports_gzip: ClassVar[bool] = True

    def __init__(self, endpoint: MqttEndpoint, cfg: TelemetryConfig, client_factory: ClientFactory = build_client,
                 diagnose: Callable[[MqttEndpoint], str | None] = diagnose_tls) -> None:
        self.endpoint = endpoint
        self.max_payload_bytes = MAX_PAYLOAD_BYTES
        self._cfg = cfg
        self._factory = client_factory
        self._diagnose = diagnose
        self._watch = ConnectionWatch()
        self._stopped = threading.Event()
        self._client: Any = None
        self._props: dict[tuple[str, str, int, str], list[mqtt5.UserProperty]] = {}
        self._logged: str | None = None

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> MqttTransport:
        return cls(parse_uri(uri, device_id), cfg)

    def describe(self) -> str:
        return self.endpoint.describe()

    # -- connection ------------------------------------------------------------------------------
    def open(self) -> None:
        if self._client is not None:
            return
        hooks = ClientHooks(self._on_success, self._on_failure, self._on_disconnect, lambda _d: self._stopped.set())
        self._client = self._factory(self.endpoint, self._cfg, hooks)
        self._client.start()
        if self.endpoint.tls:  # a clear TLS error in about a second instead of after s2n's blinding delay
            self._diagnose_later()

    def status(self) -> LinkStatus:
        return self._watch.status()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._watch.wait(timeout_s)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.stop()
        # Returns at once unless a TLS handshake is stuck in s2n's blinding delay: do not wait that out.
        self._stopped.wait(2.0)
        self._watch.down(None)

    def _on_success(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        self._watch.up()
        log.info("telemetry: connected to %s as %s", self.describe(), self.endpoint.client_id)
        self._logged = None

    def _on_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        name = getattr(data.exception, "name", type(data.exception).__name__)
        self._set_error(self._explain(name, data.connack_packet))
        if "TLS" in name:
            self._diagnose_later()

    def _on_disconnect(self, data: mqtt5.LifecycleDisconnectData) -> None:
        name = getattr(data.exception, "name", "")
        if name == "AWS_ERROR_MQTT5_USER_REQUESTED_STOP":
            self._watch.down(None)
            return
        reason = data.disconnect_packet.reason_code.name if data.disconnect_packet else name
        self._set_error(str(TelemetryError(f"lost the connection to {self.describe()} ({reason})", _FIX)))

    def _explain(self, name: str, connack: mqtt5.ConnackPacket | None) -> str:
        where = f"MQTT broker {self.describe()}"
        if connack is not None and connack.reason_code is not None and int(connack.reason_code) >= 0x80:
            return str(TelemetryError(f"{where} refused the connection: {connack.reason_code.name}",
                                      "check the client id, certificate and the broker's policy for them"))
        if "TLS" in name:
            return str(TelemetryError(f"TLS handshake with {where} failed ({name})", _TLS_FIX))
        cause, fix = _CAUSES.get(name, (f"cannot be reached ({name})", "check the telemetry URI"))
        return str(TelemetryError(f"{where} {cause}", f"{fix}; {_FIX}"))

    def _set_error(self, message: str) -> None:
        self._watch.down(message)
        if message != self._logged:
            log.warning("telemetry: %s", message)
            self._logged = message

    def _diagnose_later(self) -> None:
        threading.Thread(target=self._run_diagnosis, name="edgeinfer-mqtt-tls-check", daemon=True).start()

    def _run_diagnosis(self) -> None:
        reason = self._diagnose(self.endpoint)
        if reason and not self._watch.status().connected:
            self._set_error(str(TelemetryError(f"TLS with MQTT broker {self.describe()}: {reason}", _TLS_FIX)))

    # -- sending ---------------------------------------------------------------------------------
    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        return self.submit(messages, timeout_s).wait()

    def submit(self, messages: Sequence[Message], timeout_s: float) -> InFlight:
        """Publish all now; the handle collects the PUBACKs."""
        flight = InFlight(self.describe(), time.monotonic() + timeout_s, timeout_s)
        client = self._client
        if client is None:
            flight.error = "transport closed"
            return flight
        keys, futures, publish, packet = flight.keys, flight.futures, client.publish, self._packet
        for m in messages:
            try:
                futures.append(publish(packet(m)))
            except Exception as exc:  # the client refuses synchronously only when stopped or misused
                flight.error = f"publish failed: {exc}"
                break
            keys.append(m.key)
        return flight

    def _packet(self, m: Message) -> mqtt5.PublishPacket:
        gz = m.encoding == "gzip"
        return mqtt5.PublishPacket(
            topic=m.topic, payload=m.payload, qos=mqtt5.QoS.AT_LEAST_ONCE, content_type=m.content_type,
            payload_format_indicator=None if gz else mqtt5.PayloadFormatIndicator.AWS_MQTT5_PFI_UTF8,
            user_properties=self._user_properties(m.event_type, m.model_version, m.count, m.encoding))

    def _user_properties(self, event_type: str, model_version: str, count: int, encoding: str) -> list[Any]:
        key = (event_type, model_version, count, encoding)
        props = self._props.get(key)
        if props is None:
            props = [mqtt5.UserProperty("type", event_type), mqtt5.UserProperty("model_version", model_version),
                     mqtt5.UserProperty("schema", str(SCHEMA_VERSION)), mqtt5.UserProperty("count", str(count))]
            if encoding == "gzip":
                props.append(mqtt5.UserProperty("content-encoding", "gzip"))
            if len(self._props) < 256:
                self._props[key] = props
        return props
