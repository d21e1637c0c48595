"""Commands from the cloud on ``edgeinfer/{thing}/cmd``, answered on ``edgeinfer/{thing}/cmd/reply``: the shared
command set (core/control.py) under Greengrass's names.

Request (JSON): ``{"id": "42", "command": "reload_model" | "snapshot" | "set_threshold" | "status",
"args": {...}}``. Reply: ``{"id", "command", "ok", "status", "result" | "error"}`` (``status`` as
core/control.py gives it: 200, 400, 409, 422, ...), with the request's MQTT5 correlation data echoed.
``snapshot`` publishes the annotated JPEG (re-encoded until it fits the 128 KB IoT Core limit) on
``edgeinfer/{thing}/snapshot``. Commands run one at a time, in order, off the IPC callback threads (a model
reload takes seconds).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from typing import Any, Literal

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS, IoTCoreMessage, PayloadFormat, UserProperty
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.config import one_line
from ..core.control import Controlled, Controls
from ..core.telemetry.limits import MAX_PAYLOAD_BYTES
from . import INFERENCE_COMPONENT, topics
from .ipc import error_text

log = logging.getLogger(__name__)

#: command name (Greengrass's snake_case) -> the shared command
COMMANDS = {"reload_model": "reload", "set_threshold": "set_threshold", "snapshot": "snapshot", "status": "status"}


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=128)
    command: Literal["reload_model", "snapshot", "set_threshold", "status"]
    args: dict[str, Any] = Field(default_factory=dict)


class CommandHandler:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, service: Controlled, thing: str,
                 component: str = INFERENCE_COMPONENT) -> None:
        self._ipc = ipc
        self._controls = Controls(lambda: service, MAX_PAYLOAD_BYTES)
        self._thing = thing
        self._component = component  # another inference component on the core has its own command channel
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgeinfer-gg-cmd")
        self._op: Any = None

    def subscribe(self) -> None:
        _, self._op = self._ipc.subscribe_to_iot_core(topic_name=topics.command_topic(self._thing, self._component),
                                                      qos=QOS.AT_LEAST_ONCE, on_stream_event=self._on_message)

    def _on_message(self, event: IoTCoreMessage) -> None:
        msg = event.message
        if msg is not None:
            self._pool.submit(self.handle, msg.payload or b"", msg.correlation_data)

    def handle(self, payload: bytes, correlation: bytes | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = {"id": None, "command": None, "ok": False}
        try:
            raw = json.loads(payload)
            reply["id"] = raw.get("id") if isinstance(raw, dict) else None
            cmd = Command.model_validate(raw)
        except ValueError as exc:  # JSON and pydantic errors
            detail = one_line(exc) if isinstance(exc, ValidationError) else str(exc)
            reply.update(status=400, error=f"invalid command: {detail}")
        else:
            reply["command"] = cmd.command
            outcome = self._controls.run(COMMANDS[cmd.command], cmd.args)
            reply.update(ok=outcome.ok, status=outcome.status)
            if outcome.ok and outcome.jpeg is not None:
                topic = topics.snapshot_topic(self._thing, self._component)
                self._publish(topic, outcome.jpeg, "image/jpeg", None)
                reply["result"] = {**(outcome.result or {}), "topic": topic}
            elif outcome.ok:
                reply["result"] = outcome.result
            else:
                reply["error"] = outcome.error
        log.info("command %s (%s): %s", reply["command"], reply["id"], "ok" if reply["ok"] else reply["error"])
        self._publish(topics.reply_topic(self._thing, self._component), json.dumps(reply).encode(), "application/json",
                      correlation)
        return reply

    def _publish(self, topic: str, payload: bytes, content_type: str, correlation: bytes | None) -> None:
        try:
            self._ipc.publish_to_iot_core(
                topic_name=topic, qos=QOS.AT_LEAST_ONCE, payload=payload, content_type=content_type,
                correlation_data=correlation, user_properties=[UserProperty(key="device", value=self._thing)],
                payload_format=PayloadFormat.UTF8 if content_type == "application/json" else PayloadFormat.BYTES)
        except Exception as exc:
            log.error("could not publish to %s: %s", topic, error_text(exc))

    def close(self) -> None:
        if self._op is not None:
            self._op.close()
            self._op = None
        self._pool.shutdown(wait=True, cancel_futures=True)
