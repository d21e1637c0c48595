"""Telemetry transport over module outputs: ``send_message_to_output`` to ``alerts`` or ``telemetry``.

Behind the core's durable outbox like every transport. Each message carries the system properties IoT
Hub routing reads (content type ``application/json``, content encoding ``utf-8`` or ``gzip``, a message
id: the event id, or ``first-id+count`` for a batch) and the application properties ``type``,
``model_version``, ``schema`` and ``count``, so edgeHub routes and IoT Hub message routes can filter
without opening the body. A message over IoT Hub's 256 KB (payload + properties) is refused for good.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from ..core.errors import ConfigError
from ..core.telemetry.config import TelemetryConfig
from ..core.telemetry.events import SCHEMA_VERSION
from ..core.telemetry.transport import ConnectionWatch, LinkStatus, Message, SendResult, Transport
from .client import ModuleClient, create_module_client
from .limits import D2C_MESSAGE_MAX_BYTES

log = logging.getLogger(__name__)

#: room left for system and application properties inside IoT Hub's 256 KB
PROPERTIES_HEADROOM = 2048


@dataclass(frozen=True, slots=True)
class Outputs:
    telemetry: str = "telemetry"
    alerts: str = "alerts"

    def for_event(self, event_type: str) -> str:
        return self.alerts if event_type == "alert" else self.telemetry


def message_id(m: Message) -> str | None:
    """The event id (single event) or ``first-id+count`` (batch); None for gzip payloads."""
    if m.encoding != "identity":
        return None
    try:
        body = json.loads(m.payload)
    except ValueError:
        return None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return f"{body[0].get('id')}+{len(body)}"
    return str(body.get("id")) if isinstance(body, dict) and body.get("id") else None


def to_sdk_message(m: Message) -> Any:
    from azure.iot.device import Message as SdkMessage

    msg = SdkMessage(m.payload, message_id=message_id(m), content_encoding="gzip" if m.encoding == "gzip" else "utf-8",
                     content_type=m.content_type)
    msg.custom_properties.update({"type": m.event_type, "model_version": m.model_version,
                                  "schema": str(SCHEMA_VERSION), "count": str(m.count)})
    return msg


class ModuleOutputTransport(Transport):
    scheme: ClassVar[str] = "iotedge"
    supports_batches: ClassVar[bool] = True
    supports_gzip: ClassVar[bool] = True
    max_payload_bytes = D2C_MESSAGE_MAX_BYTES - PROPERTIES_HEADROOM

    def __init__(self, client: ModuleClient, outputs: Outputs | None = None, owns_client: bool = False) -> None:
        """``client``: the module's client (shared with twin and methods). ``owns_client``: this transport
        connects and shuts it down (``iotedge:`` from a config); otherwise the module runtime does, and
        calls ``connection_changed`` from its connection-state handler."""
        self._client = client
        self._outputs = outputs or Outputs()
        self._owns = owns_client
        self._watch = ConnectionWatch()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.connection_changed()

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> ModuleOutputTransport:
        """``iotedge:`` or ``iotedge:?telemetry=NAME&alerts=NAME``: a process inside an IoT Edge module."""
        query = parse_qs(urlsplit(uri).query)
        unknown = set(query) - {"telemetry", "alerts"}
        if unknown:
            raise ConfigError(f"unknown option(s) {sorted(unknown)} in telemetry transport {uri!r}",
                              "use iotedge: or iotedge:?telemetry=OUTPUT&alerts=OUTPUT")
        outputs = Outputs(**{k: v[0] for k, v in query.items()})
        client = create_module_client()
        client.on_connection_state_change = None
        transport = cls(client, outputs, owns_client=True)
        client.on_connection_state_change = transport.connection_changed
        return transport

    def connection_changed(self) -> None:
        if self._client.connected:
            self._watch.up()
        else:
            self._watch.down("not connected to edgeHub")

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """The thread that makes the SDK's blocking calls (re-made after ``close``: the core reopens a
        transport when it restarts its pipeline)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgeinfer-iotedge-send")
        return self._pool

    def open(self) -> None:
        pool = self._executor()
        if self._owns:
            pool.submit(self._connect)

    def _connect(self) -> None:
        try:
            self._client.connect()
        except Exception as exc:  # the SDK keeps retrying in the background once a connect was asked for
            self._watch.set_error(f"connect to edgeHub failed: {exc}")
        self.connection_changed()

    def status(self) -> LinkStatus:
        return self._watch.status()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._watch.wait(timeout_s)

    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        """One message after another (edgeHub acknowledges each); stops at the first failure so the rest
        stays in the outbox in order."""
        result = SendResult()
        deadline = time.monotonic() + timeout_s
        for m in messages:
            sdk_msg = to_sdk_message(m)
            if sdk_msg.get_size() > D2C_MESSAGE_MAX_BYTES:
                result.rejected[m.key] = (f"{sdk_msg.get_size()} bytes with properties; IoT Hub takes "
                                          f"{D2C_MESSAGE_MAX_BYTES}")
                continue
            output = self._outputs.for_event(m.event_type)
            fut = self._executor().submit(self._client.send_message_to_output, sdk_msg, output)
            try:
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                result.error = f"edgeHub did not acknowledge within {timeout_s:.0f}s"
                break
            except ValueError as exc:  # the SDK's own size check
                result.rejected[m.key] = str(exc)
                continue
            except Exception as exc:
                result.error = f"send_message_to_output failed: {type(exc).__name__}: {exc}"
                self.connection_changed()
                break
            result.acked.add(m.key)
        return result

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._owns:
            self._client.shutdown()

    def describe(self) -> str:
        return f"iotedge (outputs {self._outputs.telemetry}, {self._outputs.alerts})"
