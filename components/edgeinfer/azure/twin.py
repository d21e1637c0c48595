"""The module twin: desired properties ARE the core config; reported properties say what runs.

Desired: the module keeps a mirror of the whole desired document (the full twin at start, then each
patch merged with twin semantics: objects merge, null deletes) and applies the mirror as a whole, so
what runs is always one desired version, never a mix. A patch that skips a version (missed while
offline) makes the module read the full twin instead.

Reported (whole document each time, <= 32 KB)::

    edgeinfer: "0.1.0"                 module software version
    state: running | waiting | restarting | finished | error | starting | stopping
    reason: why the state is not running (waiting for source: ..., the error being restarted from)
    degraded: what does not work while inference goes on (telemetry, a sink, a backend fallback)
    config: {desired_version, applied_version, status: applied | rejected | pending, error}
    model: {name, version, sha256, task}
    delivery: {status: downloading | active | failed, name, version, sha256, error}
    backend: {backend, device, precision, active, requested, degraded, reason}
    threshold, running, last_error
    methods: "reload,snapshot,getStats,setThreshold"   once the module answers them
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.config import deep_merge
from ..core.paths import private_dir
from ..core.redact import redact
from .limits import TWIN_PROPERTIES_MAX_BYTES, json_size
from .modelref import ModelRef

log = logging.getLogger(__name__)

MAX_TEXT = 512


STREAM_REASON_MAX = 160  # 64 streams' reasons stay well inside the 32 KB of reported properties


def strip_meta(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the service's ``$version``/``$metadata`` keys (top level only, where IoT Hub puts them)."""
    return {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("$")}


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """Reported text: secrets redacted, then cut to ``limit``."""
    if text is None:
        return None
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Desired:
    doc: dict[str, Any]
    version: int

    @classmethod
    def from_twin(cls, desired: dict[str, Any]) -> Desired:
        return cls(strip_meta(desired), int(desired.get("$version", 0)))

    def follows(self, patch: dict[str, Any]) -> bool:
        """True when ``patch`` is the very next version (safe to merge)."""
        return int(patch.get("$version", -1)) == self.version + 1

    def patched(self, patch: dict[str, Any]) -> Desired:
        return Desired(deep_merge(self.doc, strip_meta(patch)), int(patch["$version"]))


@dataclass
class ConfigState:
    desired_version: int | None = None
    applied_version: int | None = None
    status: str = "pending"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"desired_version": self.desired_version, "applied_version": self.applied_version,
                "status": self.status, "error": clip(self.error)}


@dataclass
class DeliveryState:
    status: str
    ref: ModelRef
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.ref.name, "version": self.ref.version,
                "sha256": self.ref.sha256, "error": clip(self.error)}


@dataclass
class ModuleState:
    state: str = "starting"
    config: ConfigState = field(default_factory=ConfigState)
    delivery: DeliveryState | None = None
    error: str | None = None  # module-level (e.g. nothing to run yet)


def _backend(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if not info:
        return None
    out = {k: info.get(k) for k in ("backend", "device", "precision", "degraded")}
    out["active"] = ",".join(info.get("active") or [])  # flat strings: safe in any twin
    out["requested"] = ",".join(info.get("requested") or [])
    out["reason"] = clip(info.get("reason"))
    return out


def _streams(streams: dict[str, Any] | None) -> dict[str, Any] | None:
    """Each stream of ``sources:`` by id (ids are twin-safe keys): its state and why. Re-reported when a stream's
    state changes; frame counts are telemetry's (health ``run.streams``), a twin would show them stale."""
    if not streams:
        return None
    return {sid: {"state": st.get("state"), "reason": clip(st.get("reason"), STREAM_REASON_MAX)}
            for sid, st in streams.items()}


def reported_properties(state: ModuleState, status: dict[str, Any] | None, threshold: float | None = None,
                        methods: list[str] | None = None) -> dict[str, Any]:
    """The whole reported document (nulls delete stale keys in the twin)."""
    status = status or {}
    model = status.get("model")
    run_state = status.get("state")
    # once the service runs, its own state is the truth (waiting for a camera, restarting after an error ...)
    shown = run_state if state.state == "running" and run_state else state.state
    reason = status.get("reason") if shown == run_state else None
    doc: dict[str, Any] = {
        "edgeinfer": __version__,
        "state": shown,
        "reason": clip(reason),
        "degraded": clip("; ".join(status.get("degraded") or [])) or None,
        "config": state.config.as_dict(),
        "model": {k: model.get(k) for k in ("name", "version", "sha256", "task")} if model else None,
        "delivery": state.delivery.as_dict() if state.delivery else None,
        "backend": _backend(status.get("backend")),
        "threshold": threshold,
        "running": bool(status.get("running")),
        "last_error": clip(state.error or status.get("last_error")),
        "methods": ",".join(methods) if methods else None,
        "probation": status.get("probation"),
        "rollback": status.get("rollback"),
        "streams": _streams(status.get("streams")),
    }
    size = json_size(doc)
    if size > TWIN_PROPERTIES_MAX_BYTES:  # cannot happen with clipped strings; guard the contract anyway
        log.error("reported properties are %d bytes; dropping the backend details", size)
        doc["backend"] = None
    return doc


@dataclass
class LastGood:
    """The last desired document that was applied, kept in the state dir so a restart with a bad twin
    still runs what ran before."""

    path: Path
    previous: Desired | None = None  # what it held before the last save: restored when the health gate rolls back

    def load(self) -> Desired | None:
        try:
            data = json.loads(self.path.read_text())
            return Desired(data["desired"], int(data["version"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def restore_previous(self) -> None:
        if self.previous is not None:
            self.save(self.previous, keep_previous=False)

    def save(self, desired: Desired, keep_previous: bool = True) -> None:
        """Written 0600 in a 0700 folder: the desired document may name hosts, files and model URIs."""
        if keep_previous:
            self.previous = self.load()
        private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": desired.version, "desired": desired.doc}, f)
        tmp.replace(self.path)
