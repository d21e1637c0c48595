"""The component: the inference service wired to the nucleus.

start: read + validate the configuration -> follow the IoT Core connection -> start the service
(telemetry = PublishToIoTCore behind the outbox, local results on pub/sub) -> watch configuration
(validate, apply), commands, component updates, metrics -> UpdateState RUNNING. Any failure to start
is reported as UpdateState ERRORED with the one-line reason, and the process exits non-zero so the
nucleus restarts it (and marks it BROKEN after three failures).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ReportedLifecycleState

from ..core.errors import EdgeInferError
from ..core.service import InferenceService
from .commands import CommandHandler
from .configuration import ComponentConfig
from .connection import IotCoreConnection
from .ipc import error_text
from .local_results import LocalResultsSink
from .metrics import MetricsReporter
from .transport import IpcTransport
from .updates import UpdateGate

log = logging.getLogger(__name__)
ServiceFactory = Callable[..., InferenceService]


class ComponentApp:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, thing: str, model_path: str | None,
                 service_factory: ServiceFactory = InferenceService, metrics_interval_s: float = 60.0) -> None:
        self.ipc = ipc
        self.thing = thing
        self.config = ComponentConfig(ipc, model_path, thing)
        self.connection = IotCoreConnection(ipc)
        self._factory = service_factory
        self._metrics_interval_s = metrics_interval_s
        self.service: InferenceService | None = None
        self._parts: list[Any] = []
        self.stopped = threading.Event()

    def start(self) -> None:
        """Everything up and RUNNING reported, or ERRORED reported and the error raised."""
        try:
            raw = self.config.read()
            cfg = self.config.validate(raw)
            logging.getLogger("edgeinfer").setLevel(cfg.log_level)
            watch = self.connection.follow()
            transport = IpcTransport(self.ipc, watch) if cfg.telemetry.transport == IpcTransport.scheme else None
            self.service = self._factory(cfg, transport=transport,
                                         extra_sinks=[LocalResultsSink(self.ipc)])
            self.service.start()
        except Exception as exc:
            self._report(ReportedLifecycleState.ERRORED)
            self.close()
            if isinstance(exc, EdgeInferError):
                raise
            raise EdgeInferError(f"component failed to start: {error_text(exc)}", "see the component log") from exc
        service = self.service
        self.config.watch(service.replace_config, raw)
        commands = CommandHandler(self.ipc, service, self.thing)
        commands.subscribe()
        gate = UpdateGate(self.ipc, service)
        gate.subscribe()
        metrics = MetricsReporter(self.ipc, service.stats, self._metrics_interval_s)
        metrics.start()
        self._parts = [self.config, commands, gate, metrics]
        self._report(ReportedLifecycleState.RUNNING)
        status = service.status()["model"] or {}
        log.info("edgeinfer component running on %s: model %s %s", self.thing, status.get("name"),
                 status.get("version"))

    def wait(self, stop: threading.Event, poll_s: float = 1.0) -> int:
        """Block until ``stop`` is set (SIGTERM) or the pipeline ends; the process exit code."""
        assert self.service is not None
        while not stop.wait(poll_s):
            with self.config.lock:  # a configuration being applied restarts the pipeline: not an end
                if self.service.running:
                    continue
                error = self.service.status().get("last_error")
            if error:
                log.error("pipeline stopped: %s", error)
                self._report(ReportedLifecycleState.ERRORED)
                return 1
            log.info("source ended; component finished")
            return 0
        return 0

    def close(self, drain_timeout_s: float | None = None) -> int:
        """Stop everything; the telemetry events left undelivered (kept in the outbox)."""
        for part in reversed(self._parts):
            part.close()
        self._parts = []
        left = self.service.stop(drain_timeout_s) if self.service is not None else 0
        self.connection.close()
        self.stopped.set()
        return left

    def _report(self, state: str) -> None:
        try:
            self.ipc.update_state(state=state)
        except Exception as exc:
            log.error("could not report %s to the nucleus: %s", state, error_text(exc))
