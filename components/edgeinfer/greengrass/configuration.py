"""Component configuration <-> the one config schema.

* At start: GetConfiguration, minus ``accessControl`` (the nucleus's, not ours), validated whole.
* Before a deployment changes it: the nucleus sends the whole new configuration; it is validated
  exactly as it would be applied and ACCEPTED or REJECTED with the one-line reason. REJECTED fails
  the deployment (and rolls it back when the deployment says so); the running config stays.
* After it changed: update events (one per changed key) are coalesced; the latest configuration is
  read once and applied with ``replace_config`` (which changes nothing if it fails).

``model.path`` unset in the configuration means "the model component this recipe depends on":
the path the Run lifecycle passes with ``--model``.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import (
    ConfigurationUpdateEvents,
    ConfigurationValidityReport,
    ConfigurationValidityStatus,
    ValidateConfigurationUpdateEvents,
)

from ..core import config as cfgmod
from ..core.config import EdgeInferConfig
from ..core.errors import ConfigError, EdgeInferError
from .ipc import error_text

log = logging.getLogger(__name__)
NUCLEUS_KEYS = ("accessControl",)


class ComponentConfig:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, default_model: str | None, device_id: str) -> None:
        self._ipc = ipc
        self._default_model = default_model
        self._device_id = device_id
        self.lock = threading.Lock()  # held while a configuration is being applied
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._ops: list[Any] = []
        self._worker: threading.Thread | None = None
        self.applied = 0
        self.rejected: list[str] = []

    # -- reading and validating -------------------------------------------------------------------
    def document(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The config document edgeinfer validates: nucleus keys removed, model path and device filled in."""
        doc = {k: copy.deepcopy(v) for k, v in raw.items() if k not in NUCLEUS_KEYS}
        model = doc.setdefault("model", {})
        if isinstance(model, dict) and not model.get("path") and self._default_model:
            model["path"] = self._default_model
        doc.setdefault("device_id", self._device_id)
        return doc

    def validate(self, raw: dict[str, Any], what: str = "component configuration") -> EdgeInferConfig:
        cfg = cfgmod.validate(self.document(raw), what)
        path = cfg.model.path
        if path and not Path(path).expanduser().exists():
            raise ConfigError(f"{what}: model.path {path} does not exist on this device",
                              "deploy the model component, or leave model.path unset to use it")
        return cfg

    def read(self) -> dict[str, Any]:
        return dict(self._ipc.get_configuration(key_path=[]).value or {})

    # -- watching ---------------------------------------------------------------------------------
    def watch(self, apply: Callable[[dict[str, Any]], EdgeInferConfig], started_with: dict[str, Any]) -> None:
        """Validate proposed configurations and apply changed ones with ``apply(document)``.

        ``started_with``: the configuration the service started from; a change that landed before the
        subscriptions existed is picked up at once."""
        _, op = self._ipc.subscribe_to_validate_configuration_updates(on_stream_event=self._on_validate)
        self._ops.append(op)
        _, op = self._ipc.subscribe_to_configuration_update(key_path=[], on_stream_event=self._on_update)
        self._ops.append(op)
        if self.read() != started_with:
            self._dirty.set()
        self._worker = threading.Thread(target=self._apply_loop, args=(apply,), name="edgeinfer-gg-config",
                                        daemon=True)
        self._worker.start()

    def _on_validate(self, event: ValidateConfigurationUpdateEvents) -> None:
        ev = event.validate_configuration_update_event
        if ev is None:
            return
        try:
            self.validate(ev.configuration or {}, "proposed configuration")
            status, message = ConfigurationValidityStatus.ACCEPTED, "valid edgeinfer configuration"
        except EdgeInferError as exc:
            status, message = ConfigurationValidityStatus.REJECTED, str(exc)
            self.rejected.append(message)
            log.warning("rejected deployment %s: %s", ev.deployment_id, message)
        try:
            self._ipc.send_configuration_validity_report(configuration_validity_report=ConfigurationValidityReport(
                status=status, deployment_id=ev.deployment_id, message=message[:1000]))
        except Exception as exc:
            log.error("could not report configuration validity to the nucleus: %s", error_text(exc))

    def _on_update(self, event: ConfigurationUpdateEvents) -> None:
        self._dirty.set()

    def _apply_loop(self, apply: Callable[[dict[str, Any]], EdgeInferConfig]) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            try:
                with self.lock:
                    apply(self.document(self.read()))
                self.applied += 1
            except EdgeInferError as exc:  # accepted by validation but failed to apply (e.g. model load)
                log.error("configuration not applied, the running one stays: %s", exc)
            except Exception as exc:
                log.error("configuration not applied: %s", error_text(exc))

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        for op in self._ops:
            op.close()
        self._ops.clear()
        if self._worker is not None:
            self._worker.join(10)
