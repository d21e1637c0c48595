"""The IoT Edge module at run time: module client <-> RunSession.

Start: connect, read the whole twin, apply its desired properties (download the model they name),
start the service with module outputs as its telemetry transport, then listen for desired patches,
direct methods and connection changes. One control thread applies desired versions in order; a bad
version (unknown key, wrong type, 404, sha256 mismatch, model that fails to load) is rejected with the
reason in the reported properties and everything keeps running as it was.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import config as cfgmod
from ..core import remote
from ..core.errors import ConfigError, EdgeInferError
from ..core.session import RunSession
from .client import ModuleClient
from .errors import DeliveryError, ModuleError, NoModelError
from .methods import MethodHandlers
from .model_download import ModelDownloader
from .modelref import ModelRef, split_model
from .transport import ModuleOutputTransport
from .twin import ConfigState, DeliveryState, Desired, LastGood, ModuleState, reported_properties

log = logging.getLogger(__name__)

ServiceFactory = Callable[[cfgmod.EdgeInferConfig, ModuleOutputTransport], RunSession]
Active = tuple[ModelRef, Path]


def _default_factory(config: cfgmod.EdgeInferConfig, transport: ModuleOutputTransport) -> RunSession:
    return RunSession(config, transport=transport)


def _through_outputs(config: cfgmod.EdgeInferConfig) -> cfgmod.EdgeInferConfig:
    """The module sends telemetry through its outputs whatever the twin says: the config it runs (and reports)
    says so. A twin naming another transport is refused rather than silently ignored."""
    transport = config.telemetry.transport
    if transport not in ("none", ModuleOutputTransport.scheme):
        raise ConfigError(f"telemetry.transport {transport!r}: the module sends telemetry through its outputs "
                          "'telemetry' and 'alerts'", "leave telemetry.transport out (or give iotedge) and route "
                          "the outputs in the deployment manifest")
    telemetry = config.telemetry.model_copy(update={"transport": ModuleOutputTransport.scheme})
    return config.model_copy(update={"telemetry": telemetry})


class ModuleRuntime:
    def __init__(self, client: ModuleClient, device_id: str, state_dir: Path,
                 downloader: ModelDownloader | None = None, service_factory: ServiceFactory = _default_factory,
                 drain_timeout_s: float | None = None, local: dict[str, Any] | None = None) -> None:
        self._client = client
        self._device_id = device_id
        # the local operator's settings under every desired document (core/remote.py): the twin is remote input
        # (None: read the local settings file)
        local = remote.load_local() if local is None else local
        self._base = cfgmod.deep_merge(local, {"device_id": device_id})
        self._stop = threading.Event()
        self._downloader = downloader or ModelDownloader(state_dir / "azure" / "models", stop=self._stop,
                                                         policy=remote.policy_of(local))
        self._factory = service_factory
        self._drain_timeout_s = drain_timeout_s
        self._last_good = LastGood(state_dir / "azure" / "last-good.json")
        self._transport = ModuleOutputTransport(client)
        self._service: RunSession | None = None
        self._desired: Desired | None = None
        self._active: Active | None = None  # the delivered model that runs
        self._rollback: Path | None = None  # the delivered model that ran before it (kept on disk)
        self.state = ModuleState()
        self._work: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._report_lock = threading.Lock()
        self._reported_streams: set[str] = set()  # stream ids in the twin now: removed ones are nulled
        self._thread: threading.Thread | None = None
        self._methods_ready = False
        self.methods = MethodHandlers(lambda: self._service, self._why_not_running, self.report)

    @property
    def service(self) -> RunSession | None:
        """The run session now (None before the first configuration that runs)."""
        return self._service

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, twin_timeout_s: float = 60.0) -> None:
        """Connect, apply the twin, install the handlers. Returns once the module answers methods.
        Safe to call again after it raised (the entry point retries)."""
        self._client.connect()
        self._transport.connection_changed()
        self._apply_full(self._desired_now(twin_timeout_s), startup=True)
        self._client.on_twin_desired_properties_patch_received = self._on_patch
        self._client.on_method_request_received = self._on_method
        self._client.on_connection_state_change = self._on_connection
        if self._thread is None:
            self._thread = threading.Thread(target=self._control, name="edgeinfer-azure-control", daemon=True)
            self._thread.start()
        # a patch that came between the first read and the handler is in the twin now
        self._work.put(("full", self._desired_now(twin_timeout_s)))
        self._methods_ready = True
        self.report()

    def _desired_now(self, timeout_s: float) -> dict[str, Any]:
        """The twin's desired properties; the SDK's get_twin waits forever when nobody answers."""
        box: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()

        def get() -> None:
            try:
                box.put(self._client.get_twin()["desired"])
            except BaseException as exc:
                box.put(exc)

        threading.Thread(target=get, name="edgeinfer-get-twin", daemon=True).start()
        try:
            result = box.get(timeout=timeout_s)
        except queue.Empty:
            raise ModuleError(f"edgeHub did not answer the twin request within {timeout_s:.0f}s",
                              "check edgeHub's logs (iotedge logs edgeHub)") from None
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        self._stop.set()
        self._work.put(None)
        if self._thread is not None:
            self._thread.join(30)
        self.state.state = "stopping"
        if self._service is not None:
            left = self._service.stop(self._drain_timeout_s)
            if left:
                log.warning("%d telemetry events stay in the outbox for the next start", left)
        self.report()
        self._client.shutdown()

    # -- SDK callbacks (their threads) -------------------------------------------------------------
    def _on_patch(self, patch: dict[str, Any]) -> None:
        self._work.put(("patch", patch))

    def _on_connection(self) -> None:
        self._transport.connection_changed()
        if self._client.connected:
            log.info("connected to edgeHub; re-reading the twin")
            self._work.put(("refresh", {}))

    def _on_method(self, request: Any) -> None:
        from azure.iot.device import MethodResponse

        result = self.methods(request.name, request.payload)
        log.info("direct method %s -> %d", request.name, result.status)
        try:
            self._client.send_method_response(MethodResponse.create_from_method_request(
                request, result.status, result.payload))
        except Exception as exc:
            log.error("could not answer direct method %s: %s", request.name, exc)

    def _on_probation(self, outcome: str, detail: dict[str, Any]) -> None:
        if outcome == "rolled_back":
            self._work.put(("rolled_back", detail))

    def _rolled_back(self, rollback: dict[str, Any]) -> None:
        """The health gate put the previous model back: the twin hears that the desired model does not run,
        and a restart starts from the configuration before it."""
        cfg = self.state.config
        self.state.config = ConfigState(cfg.desired_version, cfg.applied_version, "rolled_back",
                                        f"model {rollback.get('from')} rolled back to {rollback.get('to')}: "
                                        f"{rollback.get('reason')}")
        if self.state.delivery is not None:
            self.state.delivery = DeliveryState("rolled_back", self.state.delivery.ref, rollback.get("reason"))
        self._last_good.restore_previous()
        self.report()

    # -- control thread ----------------------------------------------------------------------------
    def _control(self) -> None:
        shown: tuple[str, str | None, tuple[str, ...], str, tuple[tuple[str, str], ...]] | None = None
        while True:
            try:
                item = self._work.get(timeout=1.0)
            except queue.Empty:  # no work: report when what runs changed by itself (camera back, pipeline died)
                now = self._run_state()
                if shown is not None and now != shown:
                    self.report()
                shown = now
                continue
            if item is None:
                break
            kind, body = item
            try:
                if kind == "rolled_back":
                    self._rolled_back(body)
                elif kind == "patch" and self._desired is not None and self._desired.follows(body):
                    self._apply(self._desired.patched(body))
                elif kind == "full":
                    self._apply_full(body)
                else:  # a refresh, or a patch that skips versions: read the whole twin
                    self._apply_full(self._desired_now(60.0))
            except Exception:  # the control thread must survive anything
                log.exception("applying desired properties failed")
            shown = self._run_state()

    def _run_state(self) -> tuple[str, str | None, tuple[str, ...], str, tuple[tuple[str, str], ...]]:
        """What, when it changes by itself, is re-reported: the run's state, what is degraded, a probation, each
        stream's state."""
        s = self._service
        if s is None:
            return (self.state.state, self.state.error, (), "", ())
        state, reason = s.state()
        status = s.status()
        probation = status.get("probation") or {}
        streams = tuple((sid, str(st.get("state"))) for sid, st in (status.get("streams") or {}).items())
        return (state, reason, tuple(s.degraded()), str(probation.get("model_version")), streams)

    def _apply_full(self, desired: dict[str, Any], startup: bool = False) -> None:
        new = Desired.from_twin(desired)
        if not startup and self._desired is not None and new.version == self._desired.version:
            return
        if self._apply(new) or not startup:
            return
        fallback = self._last_good.load()
        if fallback is not None and fallback.version != new.version:
            log.warning("desired version %d rejected; starting with the last good version %d",
                        new.version, fallback.version)
            rejected = self.state.config
            if self._apply(fallback, report=False):
                self.state.config = ConfigState(new.version, fallback.version, "rejected", rejected.error)
                self._desired = new
                self.report()

    def _apply(self, desired: Desired, report: bool = True) -> bool:
        """Apply one desired version as a whole. True when it runs now."""
        self._desired = desired
        self.state.config = ConfigState(desired.version, self.state.config.applied_version, "pending")
        try:
            config, active = self._resolve(desired)
            if self._service is None:
                service = self._factory(config, self._transport)
                service.add_probation_listener(self._on_probation)
                service.start()
                self._service = service
            else:
                self._service.replace_config(config.model_dump(mode="json"))
        except Exception as exc:
            if not isinstance(exc, EdgeInferError):  # a bug must not leave the twin saying "pending"
                log.exception("desired version %d failed", desired.version)
                exc = EdgeInferError(f"internal error applying it: {type(exc).__name__}: {exc}",
                                     "see the module log (iotedge logs edgeinfer)")
            log.error("desired version %d rejected: %s", desired.version, exc)
            self.state.config = ConfigState(desired.version, self.state.config.applied_version, "rejected", str(exc))
            if self.state.delivery is not None and self.state.delivery.status == "downloading":
                self.state.delivery = DeliveryState("failed", self.state.delivery.ref, str(exc))
            if self._service is None:
                self.state.state = "waiting" if isinstance(exc, NoModelError) else "error"
            if report:
                self.report()
            return False
        self.state.config = ConfigState(desired.version, desired.version, "applied")
        self.state.state, self.state.error = "running", None
        previous, self._active = self._active, active
        if active is not None:  # the model that runs and the one before it (rollback) stay on disk
            keep = [active[1]] + ([previous[1]] if previous is not None and previous[1] != active[1] else [])
            self._downloader.retain(keep)
            self._rollback = keep[1] if len(keep) > 1 else self._rollback
        self.state.delivery = DeliveryState("active", active[0]) if active is not None else None
        self._last_good.save(desired)
        log.info("desired version %d applied", desired.version)
        if report:
            self.report()
        return True

    def _resolve(self, desired: Desired) -> tuple[cfgmod.EdgeInferConfig, Active | None]:
        """The config a desired document means, with the model it names downloaded. Raises, changes nothing."""
        ref, rest = split_model(desired.doc)
        config = remote.resolve(rest, self._base, f"desired properties version {desired.version}")  # before download
        config = _through_outputs(config)
        if ref is not None and config.model.path:
            raise ConfigError("the desired model has both a path and a uri", "give model.path or model.uri, not both")
        if ref is not None and (problem := remote.check_model_uri(ref.uri, config.remote)):
            raise remote.refuse([f"model.uri: {problem}"], f"desired properties version {desired.version}")
        if ref is None:
            if not config.model.path:
                raise NoModelError("no model configured", "set model.name, model.version, model.uri and "
                                   "model.sha256 (or model.path) in the module's desired properties")
            return config, None
        path = self._fetch(ref)
        return cfgmod.apply_patch(config, {"model": {"path": str(path)}}, "model delivery"), (ref, path)

    def _fetch(self, ref: ModelRef) -> Path:
        if self._active is not None and self._active[0] == ref and self._active[1].is_file():
            return self._active[1]
        self.state.delivery = DeliveryState("downloading", ref)
        self.report()
        try:
            return self._downloader.fetch(ref, keep=[p for p in (self._active and self._active[1],
                                                                 self._rollback) if p is not None])
        except DeliveryError as exc:
            self.state.delivery = DeliveryState("failed", ref, str(exc))
            raise

    # -- reporting ---------------------------------------------------------------------------------
    def _why_not_running(self) -> str:
        return self.state.config.error or self.state.error or self.state.state

    def report(self) -> None:
        """Send the whole reported document; a failure is logged (the next report carries everything)."""
        service = self._service
        status = service.status() if service is not None else None
        threshold = service.config.model.score_threshold if service is not None else None
        doc = reported_properties(self.state, status, threshold, self.methods.names if self._methods_ready else None)
        with self._report_lock:
            shown = set(doc["streams"] or {})
            if gone := self._reported_streams - shown:  # a merge patch keeps keys it does not name: null them
                doc["streams"] = {**(doc["streams"] or {}), **dict.fromkeys(sorted(gone))}
            self._reported_streams = shown
            try:
                self._client.patch_twin_reported_properties(doc)
            except Exception as exc:
                log.warning("could not update reported properties: %s", exc)
