"""Commands from the cloud on ``edgeinfer/{thing}/cmd``, answered on ``edgeinfer/{thing}/cmd/reply``.

Request (JSON): ``{"id": "42", "command": "reload_model" | "snapshot" | "set_threshold" | "status",
"args": {...}}``. Reply: ``{"id", "command", "ok", "result" | "error"}``, with the request's MQTT5
correlation data echoed. ``snapshot`` publishes the annotated JPEG (re-encoded until it fits the
128 KB IoT Core limit) on ``edgeinfer/{thing}/snapshot``. Commands run one at a time, in order,
off the IPC callback threads (a model reload takes seconds).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from typing import Any, Literal, Protocol

import cv2
import numpy as np
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS, IoTCoreMessage, PayloadFormat, UserProperty
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.config import EdgeInferConfig, one_line
from ..core.errors import EdgeInferError
from ..core.remote import check_reload_path
from ..core.telemetry.limits import MAX_PAYLOAD_BYTES
from . import topics
from .ipc import error_text

log = logging.getLogger(__name__)


class Service(Protocol):
    @property
    def config(self) -> EdgeInferConfig: ...
    def reload_model(self, path: str | None = None) -> dict[str, Any]: ...
    def set_threshold(self, value: float) -> None: ...
    def snapshot(self) -> bytes: ...
    def status(self) -> dict[str, Any]: ...
    @property
    def busy(self) -> bool: ...


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=128)
    command: Literal["reload_model", "snapshot", "set_threshold", "status"]
    args: dict[str, Any] = Field(default_factory=dict)


class ThresholdArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: float = Field(ge=0.0, le=1.0)


class ReloadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None


def fit_jpeg(jpeg: bytes, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """Re-encode (lower quality, then smaller) until the JPEG fits ``limit`` bytes."""
    if len(jpeg) <= limit:
        return jpeg
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgeInferError("the snapshot is not a JPEG OpenCV can decode", "check OpenCV's JPEG support")
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25):
        frame = img if scale == 1.0 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for quality in (80, 65, 50):
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(buf) <= limit:
                return buf.tobytes()
    raise EdgeInferError(f"the snapshot does not fit {limit} bytes even at a quarter size", "lower the source size")


class CommandHandler:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, service: Service, thing: str) -> None:
        self._ipc = ipc
        self._service = service
        self._thing = thing
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="edgeinfer-gg-cmd")
        self._op: Any = None

    def subscribe(self) -> None:
        _, self._op = self._ipc.subscribe_to_iot_core(topic_name=topics.command_topic(self._thing),
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
            reply["command"] = cmd.command
            reply["result"] = self._run(cmd)
            reply["ok"] = True
        except ValueError as exc:  # JSON and pydantic errors
            reply["error"] = f"invalid command: {one_line(exc) if isinstance(exc, ValidationError) else exc}"
        except EdgeInferError as exc:
            reply["error"] = str(exc)
        except Exception as exc:
            log.exception("command failed")
            reply["error"] = error_text(exc)
        log.info("command %s (%s): %s", reply["command"], reply["id"], "ok" if reply["ok"] else reply["error"])
        self._publish(topics.reply_topic(self._thing), json.dumps(reply).encode(), "application/json", correlation)
        return reply

    def _run(self, cmd: Command) -> Any:
        if cmd.command == "reload_model":
            path = ReloadArgs.model_validate(cmd.args).path
            check_reload_path(path, self._service.config.remote)  # a command is remote input
            return self._service.reload_model(path)
        if cmd.command == "set_threshold":
            value = ThresholdArgs.model_validate(cmd.args).value
            self._service.set_threshold(value)
            return {"score_threshold": value}
        if cmd.command == "snapshot":
            jpeg = fit_jpeg(self._service.snapshot())
            topic = topics.snapshot_topic(self._thing)
            self._publish(topic, jpeg, "image/jpeg", None)
            return {"topic": topic, "bytes": len(jpeg)}
        return {**self._service.status(), "busy": self._service.busy,
                "swapping": bool(getattr(self._service, "swapping", False))}

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
