"""A sink that publishes every frame's result on the local pub/sub topic (PublishToTopic), for other
components on the same device. Fire and forget: a slow or refused local publish never stalls the
pipeline (the first refusal is logged and the sink turns itself off)."""

from __future__ import annotations

import logging
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage

from ..core.sinks.base import RunContext
from ..core.types import FrameResult
from . import topics
from .ipc import error_text, is_refusal

log = logging.getLogger(__name__)


class LocalResultsSink:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, topic: str = topics.LOCAL_RESULTS_TOPIC) -> None:
        self._ipc = ipc
        self._topic = topic
        self._ctx: RunContext | None = None
        self.enabled = True

    def start(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def on_result(self, result: FrameResult) -> None:
        if not self.enabled:
            return
        message = {"device": self._ctx.device_id if self._ctx else None,
                   "model_version": self._ctx.model_version if self._ctx else None, **result.to_dict()}
        try:
            fut = self._ipc.publish_to_topic_async(topic=self._topic, publish_message=PublishMessage(
                json_message=JsonMessage(message=message)))
        except Exception as exc:
            log.debug("local publish failed: %s", error_text(exc))
            return
        fut.add_done_callback(self._done)

    def _done(self, fut: Any) -> None:
        exc = fut.exception()
        if exc is not None and is_refusal(exc) and self.enabled:
            self.enabled = False
            log.warning("local results off: the nucleus refused PublishToTopic on %s (%s)", self._topic,
                        error_text(exc))

    def close(self, summary: dict[str, Any]) -> None:
        pass
