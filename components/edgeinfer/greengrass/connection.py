"""Follow the nucleus's IoT Core connection (SubscribeToIoTCoreConnectionStatus, recent nuclei).

The nucleus sends the current status right after the subscription response, then every change.
A nucleus without the operation answers with an error: then the link is assumed up and the
nucleus's own spooler covers short outages (see docs/greengrass.md for the DiskSpooler).
"""

from __future__ import annotations

import logging

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ConnectionStatus, IoTCoreConnectionStatusEvent

from ..core.telemetry.transport import ConnectionWatch
from .ipc import error_text

log = logging.getLogger(__name__)


class IotCoreConnection:
    def __init__(self, ipc: GreengrassCoreIPCClientV2) -> None:
        self._ipc = ipc
        self.watch: ConnectionWatch | None = None
        self._op = None

    def follow(self) -> ConnectionWatch | None:
        """Subscribe; the watch to hand to the transport, or None when the nucleus cannot tell."""
        watch = ConnectionWatch()
        try:
            _, self._op = self._ipc.subscribe_to_iot_core_connection_status(
                on_stream_event=lambda e: self._on(watch, e))
        except Exception as exc:
            log.warning("the nucleus does not report the IoT Core connection (%s); assuming it is up",
                        error_text(exc))
            return None
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
