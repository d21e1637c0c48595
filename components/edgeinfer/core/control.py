"""One command set for every remote control surface, and its one implementation.

The Greengrass component (commands over IoT Core) and the IoT Edge module (direct methods) offer the same
four operations; each adapter only maps its vendor's names onto these and carries the outcome over its
transport:

=============== ======================== ====================== =========================================
command         Greengrass command       IoT Edge method        result
=============== ======================== ====================== =========================================
``reload``      ``reload_model``         ``reload``             ``{"model": {...}}`` (the model now running)
``set_threshold`` ``set_threshold``      ``setThreshold``       ``{"score_threshold": 0.6}``
``snapshot``    ``snapshot``             ``snapshot``           ``{"content_type", "width", "height",
                                                                "bytes"}`` + the JPEG (delivered by the
                                                                adapter: a topic, or base64 inline)
``status``      ``status``               ``getStats``           ``status()`` + ``busy``, ``swapping``,
                                                                ``stats``
=============== ======================== ====================== =========================================

Arguments are remote input: validated strictly, a reload path only under ``remote.model_dirs``. Outcomes
carry an HTTP-style status: 200 done; 400 bad arguments; 404 unknown command; 409 cannot now (no frame
yet); 422 the model was rejected (the old one keeps running); 503 nothing runs yet; 500 unexpected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from .config import EdgeInferConfig, one_line
from .errors import ConfigError, EdgeInferError, ModelError
from .jpeg import fit_jpeg
from .remote import check_reload_path
from .streams.config import STREAM_ID

log = logging.getLogger(__name__)

COMMANDS = ("reload", "set_threshold", "snapshot", "status")


class Controlled(Protocol):
    """What the commands act on: the run session."""

    @property
    def config(self) -> EdgeInferConfig: ...
    def reload_model(self, path: str | None = None) -> dict[str, Any]: ...
    def set_threshold(self, value: float) -> None: ...
    def snapshot(self, stream: str | None = None) -> bytes: ...
    def stats(self) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    @property
    def busy(self) -> bool: ...
    @property
    def swapping(self) -> bool: ...


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReloadArgs(_Args):
    path: str | None = Field(default=None, max_length=4096,
                             description="a model package folder, .zip or model file on the device; none = reload "
                                         "the configured one")


class ThresholdArgs(_Args):
    value: float = Field(ge=0.0, le=1.0, validation_alias=AliasChoices("value", "threshold"), strict=True)


class SnapshotArgs(_Args):
    max_bytes: int | None = Field(default=None, ge=1024, le=16 * 1024 * 1024, strict=True)
    stream: str | None = Field(default=None, pattern=STREAM_ID, description="the stream's id (sources:); none = the "
                               "latest frame of any stream")


class NoArgs(_Args):
    pass


_ARGS: dict[str, type[_Args]] = {"reload": ReloadArgs, "set_threshold": ThresholdArgs, "snapshot": SnapshotArgs,
                                 "status": NoArgs}
_HOW = {"set_threshold": 'send the threshold as a number from 0 to 1, e.g. {"value": 0.6}',
        "reload": 'send {"path": "<package on the device>"}, or nothing to reload the configured model',
        "snapshot": 'send nothing, or {"max_bytes": N} with N from 1024 to the transport\'s limit, and/or '
                    '{"stream": ID} for one stream of sources:',
        "status": "send no arguments"}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    result: dict[str, Any] | None = None
    error: str | None = None
    jpeg: bytes | None = None  # a snapshot's image, for the adapter to deliver

    @property
    def ok(self) -> bool:
        return self.status == 200


def _failed(status: int, message: str) -> Outcome:
    return Outcome(status, error=message)


class Controls:
    """``run(command, args) -> Outcome``; never raises. ``service`` is None until something runs
    (``not_running`` says why); ``on_change`` runs after a command changed what runs (a reported-state
    refresh); ``snapshot_max_bytes``: the largest JPEG the adapter's transport carries."""

    def __init__(self, service: Callable[[], Controlled | None], snapshot_max_bytes: int,
                 not_running: Callable[[], str] = lambda: "starting",
                 on_change: Callable[[], None] = lambda: None) -> None:
        self._service = service
        self._snapshot_max = snapshot_max_bytes
        self._not_running = not_running
        self._on_change = on_change

    def run(self, command: str, args: Any = None) -> Outcome:
        if command not in _ARGS:
            return _failed(404, f"unknown command {command!r}")
        try:
            parsed = self._parse(command, args)
        except ValueError as exc:
            detail = one_line(exc) if isinstance(exc, ValidationError) else str(exc)
            return _failed(400, f"invalid arguments for {command}: {detail}; {_HOW[command]}")
        service = self._service()
        if service is None:
            return _failed(503, f"no model is running: {self._not_running()}")
        try:
            outcome = self._dispatch(service, command, parsed)
        except ConfigError as exc:
            return _failed(400, str(exc))
        except ModelError as exc:
            return _failed(422, str(exc))
        except EdgeInferError as exc:
            return _failed(409, str(exc))
        except Exception as exc:
            log.exception("command %s failed", command)
            return _failed(500, f"internal error: {type(exc).__name__}: {exc}")
        if command in ("reload", "set_threshold"):
            self._on_change()
        return outcome

    def _parse(self, command: str, args: Any) -> _Args:
        if command == "set_threshold" and isinstance(args, int | float) and not isinstance(args, bool):
            args = {"value": float(args)}  # a bare number is what people send first
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(args).__name__}")
        return _ARGS[command].model_validate(args)

    def _dispatch(self, service: Controlled, command: str, args: _Args) -> Outcome:
        if isinstance(args, ReloadArgs):
            check_reload_path(args.path, service.config.remote)  # remote input: only under remote.model_dirs
            return Outcome(200, {"model": service.reload_model(args.path)})
        if isinstance(args, ThresholdArgs):
            service.set_threshold(args.value)
            return Outcome(200, {"score_threshold": args.value})
        if isinstance(args, SnapshotArgs):
            limit = min(args.max_bytes or self._snapshot_max, self._snapshot_max)
            jpeg, width, height = fit_jpeg(service.snapshot(args.stream), limit)
            where = {"stream": args.stream} if args.stream is not None else {}
            return Outcome(200, {"content_type": "image/jpeg", "width": width, "height": height, "bytes": len(jpeg),
                                 **where}, jpeg=jpeg)
        return Outcome(200, {**service.status(), "busy": service.busy, "swapping": service.swapping,
                             "stats": service.stats()})
