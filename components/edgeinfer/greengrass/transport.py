"""Telemetry transport over the nucleus: PublishToIoTCore, QoS 1, behind the durable outbox.

Each message carries its content type, a payload format (UTF-8 JSON, or bytes when gzipped) and the
user properties ``type``, ``model_version``, ``schema``, ``count`` (+ ``content-encoding: gzip``).
The nucleus answers once the message is in ITS spooler (in memory unless aws.greengrass.DiskSpooler
is deployed), not when IoT Core has it; so while the nucleus reports IoT Core disconnected, events
wait in edgeinfer's outbox (which survives restarts) instead of the nucleus's spool.
Unauthorized or invalid publishes are refused for good; anything else is retried by the outbox.

A nucleus that cannot report the IoT Core connection (Greengrass Lite: no spooler either, a publish
fails while iotcored is offline) leaves the transport to judge the link by its own deliveries: a round
that fails marks it down (health telemetry says so, with the nucleus's answer) and the next try comes
after a pause that doubles from 1 s to 30 s; a round that gets through marks it up.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Sequence
from typing import ClassVar

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS, PayloadFormat, UserProperty

from ..core.telemetry.config import TelemetryConfig
from ..core.telemetry.events import SCHEMA_VERSION
from ..core.telemetry.limits import MAX_PAYLOAD_BYTES
from ..core.telemetry.transport import ConnectionWatch, LinkStatus, Message, SendResult, Transport
from .ipc import error_text, is_refusal

log = logging.getLogger(__name__)


def user_properties(m: Message) -> list[UserProperty]:
    props = [UserProperty(key="type", value=m.event_type), UserProperty(key="model_version", value=m.model_version),
             UserProperty(key="schema", value=str(SCHEMA_VERSION)), UserProperty(key="count", value=str(m.count))]
    if m.encoding == "gzip":
        props.append(UserProperty(key="content-encoding", value="gzip"))
    return props


class IpcTransport(Transport):
    scheme: ClassVar[str] = "greengrass"
    supports_batches: ClassVar[bool] = True
    supports_gzip: ClassVar[bool] = True
    max_payload_bytes = MAX_PAYLOAD_BYTES

    def __init__(self, ipc: GreengrassCoreIPCClientV2, watch: ConnectionWatch | None = None,
                 probe_s: tuple[float, float] = (1.0, 30.0)) -> None:
        """``watch``: IoT Core connection state from the nucleus; None = judge it by the deliveries
        (nuclei that cannot report it), trying again after ``probe_s`` (first, longest) while down."""
        self._ipc = ipc
        self._own = watch is None
        self._watch = watch if watch is not None else ConnectionWatch()
        if self._own:
            self._watch.up()  # until a delivery says otherwise
        self._probe_s = probe_s
        self._pause = probe_s[0]
        self._retry_at = 0.0
        self._failing = False

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> IpcTransport:
        """``greengrass``: a process started by the nucleus, with its own IPC connection."""
        return cls(GreengrassCoreIPCClientV2())

    def status(self) -> LinkStatus:
        return self._watch.status()

    def wait_connected(self, timeout_s: float) -> bool:
        if not self._own or self._watch.status().connected:
            return self._watch.wait(timeout_s)
        self._watch.wait(min(timeout_s, max(0.0, self._retry_at - time.monotonic())))  # only we set it: a pause
        if time.monotonic() >= self._retry_at:
            self._watch.up()  # time to try again: the next delivery round tells
        return self._watch.status().connected

    def _judge(self, result: SendResult) -> None:
        """Own link state from a delivery round (only when the nucleus cannot report the connection)."""
        if not self._own:
            return
        if result.error is None or result.acked:
            if self._failing:
                log.info("PublishToIoTCore gets through again")
            self._failing = False
            self._pause = self._probe_s[0]
            self._watch.up()
            return
        if not self._failing:
            log.warning("telemetry cannot reach IoT Core through the nucleus (%s); it waits in the outbox",
                        result.error)
        self._failing = True
        self._retry_at = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, self._probe_s[1])
        self._watch.down(result.error)

    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        result = SendResult()
        futures: dict[concurrent.futures.Future, int] = {}
        for m in messages:
            try:
                fut = self._ipc.publish_to_iot_core_async(
                    topic_name=m.topic, qos=QOS.AT_LEAST_ONCE, payload=m.payload, user_properties=user_properties(m),
                    content_type=m.content_type,
                    payload_format=PayloadFormat.BYTES if m.encoding == "gzip" else PayloadFormat.UTF8)
            except Exception as exc:  # the connection is gone: nothing more can be handed over now
                result.error = f"PublishToIoTCore failed: {error_text(exc)}"
                break
            futures[fut] = m.key
        deadline = time.monotonic() + timeout_s
        done, pending = concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        for fut in done:
            key = futures[fut]
            failure = fut.exception()
            if failure is None:
                result.acked.add(key)
            elif is_refusal(failure):
                result.rejected[key] = f"{error_text(failure)} (check the component's accessControl for this topic)"
            else:
                result.error = f"PublishToIoTCore: {error_text(failure)}"
        if pending:
            result.error = f"{len(pending)} PublishToIoTCore call(s) unanswered after {timeout_s:.0f}s"
        self._judge(result)
        return result

    def describe(self) -> str:
        return "greengrass (PublishToIoTCore)"
