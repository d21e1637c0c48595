"""Telemetry transport over the nucleus: PublishToIoTCore, QoS 1, behind the durable outbox.

Each message carries its content type, a payload format (UTF-8 JSON, or bytes when gzipped) and the
user properties ``type``, ``model_version``, ``schema``, ``count`` (+ ``content-encoding: gzip``).
The nucleus answers once the message is in ITS spooler (in memory unless aws.greengrass.DiskSpooler
is deployed), not when IoT Core has it; so while the nucleus reports IoT Core disconnected, events
wait in edgeinfer's outbox (which survives restarts) instead of the nucleus's spool.
Unauthorized or invalid publishes are refused for good; anything else is retried by the outbox.
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

    def __init__(self, ipc: GreengrassCoreIPCClientV2, watch: ConnectionWatch | None = None) -> None:
        """``watch``: IoT Core connection state from the nucleus; None = assume connected (nuclei that
        cannot report it)."""
        self._ipc = ipc
        self._watch = watch

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> IpcTransport:
        """``greengrass``: a process started by the nucleus, with its own IPC connection."""
        return cls(GreengrassCoreIPCClientV2())

    def status(self) -> LinkStatus:
        return self._watch.status() if self._watch is not None else LinkStatus(connected=True)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._watch.wait(timeout_s) if self._watch is not None else True

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
        return result

    def describe(self) -> str:
        return "greengrass (PublishToIoTCore)"
