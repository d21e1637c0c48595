"""Component configuration <-> the one config schema.

* At start: GetConfiguration, minus ``accessControl`` (the nucleus's, not ours), validated whole.
* Before a deployment changes it: the nucleus sends the whole new configuration; it is validated
  deeply, as it would be applied (schema; model package verified, loaded, warmed up and decoded; folders
  writable; source well-formed and files present; transport usable: see core/preflight.py) and ACCEPTED
  or REJECTED with the one-line reason. REJECTED fails the deployment (and rolls it back when the
  deployment says so); the running config stays.
* The last configuration that ran is kept on disk (``$EDGEINFER_STATE_DIR/greengrass/last-good.json``,
  0600); when the nucleus hands one that cannot start, the component starts from it instead and says so.
* After it changed: update events (one per changed key) are coalesced; the latest configuration is
  read once and applied with ``replace_config`` (which changes nothing if it fails).
* A nucleus without validation events (Greengrass Lite) changes the configuration first and tells after:
  then the same checks run when it arrives, and a bad one is refused there: the running configuration
  stays, and the refusal with its reason shows in health telemetry (``nucleus.config_refused``) and the
  ``status`` command until a good one is applied (nucleus.py).

``model.path`` unset in the configuration means "the model component this recipe depends on":
the path the Run lifecycle passes with ``--model``.

The configuration is remote input: it is resolved over the device's local settings (core/remote.py), so a
deployment cannot name a hook's program, a folder to write, a ``file:`` transport, or a host or folder the local
settings' ``remote:`` lists do not allow; such a deployment is REJECTED with the first key it tried.
"""

from __future__ import annotations

import copy
import json
import logging
import os
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
from ..core import remote
from ..core.config import EdgeInferConfig
from ..core.errors import ConfigError, EdgeInferError
from ..core.preflight import preflight
from .ipc import error_text
from .nucleus import NucleusFeatures

log = logging.getLogger(__name__)
NUCLEUS_KEYS = ("accessControl",)


class ComponentConfig:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, default_model: str | None, device_id: str,
                 last_good: Path | None = None, local: dict[str, Any] | None = None,
                 nucleus: NucleusFeatures | None = None, component: str | None = None) -> None:
        self._ipc = ipc
        self._component = component  # the {component} level of its telemetry topic (greengrass/topics.py)
        self._nucleus = nucleus or NucleusFeatures()
        self._local = copy.deepcopy(local or {})  # the local operator's settings (core/remote.py load_local)
        self.last_good = LastGoodConfig(last_good or cfgmod.state_dir() / "greengrass" / "last-good.json")
        self.running: Callable[[], EdgeInferConfig | None] = lambda: None
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
        """The deployment's part of the config: the nucleus keys removed (a model path left unset means the
        recipe's model, which ``base`` holds)."""
        doc = {k: copy.deepcopy(v) for k, v in raw.items() if k not in NUCLEUS_KEYS}
        model = doc.get("model")
        if isinstance(model, dict) and not model.get("path"):
            model.pop("path", None)
        return doc

    def base(self) -> dict[str, Any]:
        """What the device sets: the local settings, the thing name, the component's name and the model the recipe
        passes."""
        doc = cfgmod.deep_merge(self._local, {"device_id": self._device_id,
                                              **({"component": self._component} if self._component else {})})
        if self._default_model and not (doc.get("model") or {}).get("path"):
            doc = cfgmod.deep_merge(doc, {"model": {"path": self._default_model}})
        return doc

    def validate(self, raw: dict[str, Any], what: str = "component configuration") -> EdgeInferConfig:
        cfg = remote.resolve(self.document(raw), self.base(), what)
        path = cfg.model.path
        if path and not Path(path).expanduser().exists():
            raise ConfigError(f"{what}: model.path {path} does not exist on this device",
                              "deploy the model component, or leave model.path unset to use it")
        return cfg

    def read(self) -> dict[str, Any]:
        return dict(self._ipc.get_configuration(key_path=[]).value or {})

    # -- watching ---------------------------------------------------------------------------------
    def watch(self, apply: Callable[[EdgeInferConfig], EdgeInferConfig], started_with: dict[str, Any]) -> None:
        """Validate proposed configurations and apply changed ones with ``apply(config)``.

        ``started_with``: the configuration the service started from; a change that landed before the
        subscriptions existed is picked up at once."""
        validating = self._nucleus.attempt("SubscribeToValidateConfigurationUpdates", lambda: (
            self._ipc.subscribe_to_validate_configuration_updates(on_stream_event=self._on_validate)))
        if validating is not None:
            self._ops.append(validating[1])
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
            cfg = self.validate(ev.configuration or {}, "proposed configuration")
            preflight(cfg, self.running())
            status, message = ConfigurationValidityStatus.ACCEPTED, "valid edgeinfer configuration"
        except Exception as exc:
            if not isinstance(exc, EdgeInferError):
                log.exception("validating deployment %s failed", ev.deployment_id)
            status, message = ConfigurationValidityStatus.REJECTED, str(exc)
            self.rejected.append(message)
            log.warning("rejected deployment %s: %s", ev.deployment_id, message)
        report = ConfigurationValidityReport(status=status, deployment_id=ev.deployment_id, message=message[:1000])
        self._nucleus.attempt("SendConfigurationValidityReport", lambda: (
            self._ipc.send_configuration_validity_report(configuration_validity_report=report)))

    def _on_update(self, event: ConfigurationUpdateEvents) -> None:
        self._dirty.set()

    def _apply_loop(self, apply: Callable[[EdgeInferConfig], EdgeInferConfig]) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            try:
                with self.lock:
                    raw = self.read()
                    apply(self.validate(raw, "configuration update"))
                self.applied += 1
                self.last_good.save(raw)
                self._nucleus.accepted()
            except EdgeInferError as exc:  # not validated before (no validation events), or failed to apply
                self._refuse(str(exc))
            except Exception as exc:
                self._refuse(error_text(exc))

    def _refuse(self, reason: str) -> None:
        log.error("configuration refused, the running one stays: %s", reason)
        self.rejected.append(reason)
        self._nucleus.refused(reason)

    def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        for op in self._ops:
            op.close()
        self._ops.clear()
        if self._worker is not None:
            self._worker.join(10)


class LastGoodConfig:
    """The component configuration that last ran, as the nucleus gave it (0600: it may name hosts and files)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.previous: dict[str, Any] | None = None  # before the last save: restored when the health gate rolls back

    def restore_previous(self) -> None:
        if self.previous is not None:
            self.save(self.previous, keep_previous=False)

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save(self, raw: dict[str, Any], keep_previous: bool = True) -> None:
        if keep_previous:
            self.previous = self.load()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(raw, f)
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk must not stop a configuration that runs
            log.warning("could not keep the last good configuration in %s: %s", self.path, exc.strerror or exc)
