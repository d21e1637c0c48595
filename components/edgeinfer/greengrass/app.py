"""The component: the inference service wired to the nucleus.

start: read + validate the configuration -> follow the IoT Core connection -> serve /metrics, /healthz and
the status page on 127.0.0.1:9464 (unless the local settings say otherwise: core/serve/) -> start the service
(telemetry = PublishToIoTCore behind the outbox, local results on pub/sub) -> watch configuration
(validate, apply), commands, component updates, metrics -> UpdateState RUNNING. Any failure to start
is reported as UpdateState ERRORED with the one-line reason, and the process exits non-zero so the
nucleus restarts it (and marks it BROKEN after three failures).

Works on every nucleus: the operations only some nuclei offer (validation events, component updates,
metrics, connection status) are tried once and done without when refused (nucleus.py); UpdateState is
retried in the background (lifecycle.py). Only GetConfiguration, SubscribeToConfigurationUpdate,
SubscribeToIoTCore and PublishToIoTCore are required.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ReportedLifecycleState

from ..core import remote
from ..core.errors import EdgeInferError
from ..core.serve.endpoints import ANNOUNCE_FILE, Endpoints
from ..core.session import RunSession
from . import INFERENCE_COMPONENT, topics
from .commands import CommandHandler
from .configuration import ComponentConfig
from .connection import ConnectionWatch, IotCoreConnection
from .ipc import error_text
from .lifecycle import StateReporter
from .local_results import LocalResultsSink
from .metrics import MetricsReporter
from .nucleus import NucleusFeatures
from .secrets import SecretKeys
from .transport import IpcTransport
from .updates import UpdateGate

log = logging.getLogger(__name__)
ServiceFactory = Callable[..., RunSession]


class ComponentApp:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, thing: str, model_path: str | None,
                 service_factory: ServiceFactory = RunSession, metrics_interval_s: float = 60.0,
                 local: dict[str, Any] | None = None, component: str = INFERENCE_COMPONENT) -> None:
        self.ipc = ipc
        self.thing = thing
        self.component = component  # its command channel and local results topic (greengrass/topics.py)
        self.nucleus = NucleusFeatures(on_change=self._health_now)  # what this nucleus offers, learnt by trying
        self.state = StateReporter(ipc, self.nucleus)
        # the local operator's settings under every configuration (None: read the local settings file)
        self.config = ComponentConfig(ipc, model_path, thing, local=remote.load_local() if local is None else local,
                                      nucleus=self.nucleus, component=component)
        self.connection = IotCoreConnection(ipc, self.nucleus)
        self._factory = service_factory
        self._metrics_interval_s = metrics_interval_s
        self.service: RunSession | None = None
        self.fallback_reason: str | None = None  # why the nucleus's configuration did not start, when it did not
        self._parts: list[Any] = []
        self.stopped = threading.Event()
        self.endpoints: Endpoints | None = None  # /metrics, /healthz, the status page (core/serve/)

    def start(self) -> None:
        """Everything up and RUNNING reported, or ERRORED reported and the error raised.

        A configuration from the nucleus that cannot start falls back to the last one that ran (kept on
        disk); the deployment that brought it already failed validation or will be retried by the nucleus."""
        try:
            raw = self.config.read()
            watch = self.connection.follow()
            try:
                self._start_service(raw, watch)
            except EdgeInferError as exc:
                fallback = self.config.last_good.load()
                if fallback is None or fallback == raw:
                    raise
                log.error("the configuration from the nucleus cannot start (%s); starting from the last good one "
                          "instead", exc)
                self._start_service(fallback, watch)
                self.fallback_reason = str(exc)
                self.nucleus.refused(str(exc))
                raw = fallback
            self._start_parts(raw)
        except Exception as exc:
            self.state.report(ReportedLifecycleState.ERRORED, retry=False)  # the process ends next
            self.close()
            if isinstance(exc, EdgeInferError):
                raise
            raise EdgeInferError(f"component failed to start: {error_text(exc)}", "see the component log") from exc
        self.state.report(ReportedLifecycleState.RUNNING)
        status = (self.service.status()["model"] if self.service is not None else None) or {}
        log.info("edgeinfer component running on %s: model %s %s", self.thing, status.get("name"),
                 status.get("version"))

    def _start_parts(self, raw: dict[str, Any]) -> None:
        """Configuration watch, commands, component updates, metrics: the parts around a started service."""
        service = self.service
        assert service is not None  # _start_service set it or raised
        self.config.last_good.save(raw)
        self.config.watch(service.apply, raw)
        self._parts.append(self.config)
        commands = CommandHandler(self.ipc, service, self.thing, self.component)
        self._parts.append(commands)
        commands.subscribe()  # required: a nucleus that refuses it (accessControl) fails the start, ERRORED
        gate = UpdateGate(self.ipc, service, nucleus=self.nucleus)
        self._parts.append(gate)
        gate.subscribe()
        metrics = MetricsReporter(self.ipc, service.stats, self._metrics_interval_s, nucleus=self.nucleus)
        self._parts.append(metrics)
        metrics.start()

    def _start_service(self, raw: dict[str, Any], watch: ConnectionWatch | None) -> None:
        cfg = self.config.validate(raw)
        logging.getLogger("edgeinfer").setLevel(cfg.log_level)
        if self.endpoints is None:  # serve: is local-only, so the first configuration's is the device's
            self.endpoints = Endpoints(cfg.serve, lambda: self.service,
                                       announce=cfg.resolved_state_dir() / ANNOUNCE_FILE)
            self.endpoints.start()  # /healthz answers while the model loads
        transport = IpcTransport(self.ipc, watch) if cfg.telemetry.transport == IpcTransport.scheme else None
        sinks = [LocalResultsSink(self.ipc, topics.local_results_topic(self.component)),
                 *self.endpoints.sinks(lambda: self.service)]
        service = self._factory(cfg, transport=transport, extra_sinks=sinks,
                                key_source=SecretKeys(self.ipc),  # trust.decryption.greengrass_secret
                                host_state=self.nucleus.state)  # nucleus.missing in every health event
        service.add_probation_listener(self._on_probation)
        service.start()
        self.service = service
        self.config.running = lambda: service.config

    def _on_probation(self, outcome: str, detail: dict[str, Any]) -> None:
        """After the health gate rolled a model back, a restart starts from the configuration before it (the
        deployed one names the model it refuses now); the health event and ``status`` say why."""
        if outcome == "rolled_back":
            self.config.last_good.restore_previous()

    def wait(self, stop: threading.Event, poll_s: float = 1.0) -> int:
        """Block until ``stop`` is set (SIGTERM) or the run ends by itself; the process exit code.

        Exit 0 only when a finite source ended; a run that ended on an error reports ERRORED and exits 1,
        so the nucleus restarts the component (a live source's failures are retried inside the session)."""
        assert self.service is not None
        while not stop.wait(poll_s):
            with self.config.lock:  # a configuration being applied restarts the pipeline: not an end
                state, reason = self.service.state()
            if state == "finished":
                log.info("source ended; component finished")
                return 0
            if state in ("error", "stopped"):
                log.error("pipeline stopped: %s", reason or self.service.last_error or "ended unexpectedly")
                self.state.report(ReportedLifecycleState.ERRORED, retry=False)
                return 1
            alive = self.endpoints.liveness() if self.endpoints is not None else None
            if alive is not None and alive.state == "stalled":  # what /healthz says: the nucleus restarts us
                log.error("pipeline stalled: %s", alive.reason)
                self.state.report(ReportedLifecycleState.ERRORED, retry=False)
                return 1
            # "restarting" and "waiting" stay RUNNING: ERRORED would make the nucleus kill the process that is
            # recovering; the state and its reason travel in health telemetry and the status command instead
        return 0

    def close(self, drain_timeout_s: float | None = None) -> int:
        """Stop everything; the telemetry events left undelivered (kept in the outbox)."""
        for part in reversed(self._parts):
            part.close()
        self._parts = []
        self.state.close()
        left = self.service.stop(drain_timeout_s) if self.service is not None else 0
        if self.endpoints is not None:
            self.endpoints.stop()
        self.connection.close()
        self.stopped.set()
        return left

    def _health_now(self) -> None:
        """The nucleus's record changed (a gap found, a configuration refused): tell the cloud at once."""
        if self.service is not None:
            self.service.report_health()
