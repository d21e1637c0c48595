"""Follow the nucleus's IoT Core connection (SubscribeToIoTCoreConnectionStatus, recent nuclei).

The nucleus sends the current status right after the subscription response, then every change.
A nucleus without the operation (Greengrass Lite, Java nuclei before 2.12) answers with an error: it is
recorded once as missing and the transport judges the link by its own delivery results instead
(transport.py); on the Java nucleus its spooler also covers short outages (docs/greengrass.md).
"""

from __future__ import annotations

import logging
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ConnectionStatus, IoTCoreConnectionStatusEvent

from ..core.telemetry.transport import ConnectionWatch
from .nucleus import NucleusFeatures

log = logging.getLogger(__name__)


class IotCoreConnection:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, nucleus: NucleusFeatures | None = None) -> None:
        self._ipc = ipc
        self._nucleus = nucleus or NucleusFeatures()
        self.watch: ConnectionWatch | None = None
        self._op: Any = None

    def follow(self) -> ConnectionWatch | None:
        """Subscribe; the watch to hand to the transport, or None when the nucleus cannot tell."""
        watch = ConnectionWatch()
        subscribed = self._nucleus.attempt("SubscribeToIoTCoreConnectionStatus", lambda: (
            self._ipc.subscribe_to_iot_core_connection_status(on_stream_event=lambda e: self._on(watch, e))))
        if subscribed is None:
            return None
        self._op = subscribed[1]
        self.watch = watch
        return watch

    @staticmethod
    def _on(watch: ConnectionWatch, event: IoTCoreConnectionStatusEvent) -> None:
        status = event.connection_status_event.status if event.connection_status_event else None
        if status == ConnectionStatus.CONNECTED:
            log.info("nucleus: IoT Core connected")
            watch.up()
        elif status == ConnectionStatus.DISCONNECTED:
            log.warning("nucleus: IoT Core disconnected; telemetry waits in the outbox")
            watch.down("the nucleus reports IoT Core disconnected")

    def close(self) -> None:
        if self._op is not None:
            self._op.close()
            self._op = None
