"""What this nucleus offers, learnt by trying: one record per component process.

Greengrass nuclei differ. The Java nucleus (2.x) serves every IPC operation edgeinfer uses; Greengrass Lite
answers ``ServiceError`` to SubscribeToValidateConfigurationUpdates, SendConfigurationValidityReport,
SubscribeToComponentUpdates, DeferComponentUpdate, PutComponentMetric and SubscribeToIoTCoreConnectionStatus,
and its UpdateState fails while its health daemon is not running. Each optional operation is tried once; an
error means "this nucleus does not offer it": it is logged once, listed in health telemetry as
``nucleus.missing``, and the component carries on without it (see docs/greengrass.md for what replaces each).
UpdateState is the exception that is retried (lifecycle.py) and leaves the list once it succeeds.

A configuration refused on arrival (no validation events on this nucleus) is kept here too, so health
telemetry and the ``status`` command say which one and why.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .ipc import error_text

log = logging.getLogger(__name__)
T = TypeVar("T")

#: what the component does instead, per operation (for the one log line)
INSTEAD: dict[str, str] = {
    "SubscribeToValidateConfigurationUpdates": "a bad configuration is refused when it arrives and the running "
                                               "one stays",
    "SendConfigurationValidityReport": "a bad configuration is refused when it arrives and the running one stays",
    "SubscribeToComponentUpdates": "deployments are not deferred",
    "DeferComponentUpdate": "deployments are not deferred",
    "PutComponentMetric": "fps and latency travel in health telemetry only",
    "SubscribeToIoTCoreConnectionStatus": "the outbox's own delivery results tell whether IoT Core is reachable",
    "UpdateState": "the state is reported again until the nucleus takes it",
}


class NucleusFeatures:
    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        """``on_change``: called (outside the lock) when the record changes, e.g. to send a health event now."""
        self._lock = threading.Lock()
        self._missing: dict[str, str] = {}  # operation -> the nucleus's answer
        self._refused: tuple[str, dt.datetime] | None = None
        self.on_change = on_change

    def attempt(self, operation: str, call: Callable[[], T]) -> T | None:
        """``call()`` once; its result, or None (recorded as missing) when the nucleus answers with an error."""
        try:
            return call()
        except Exception as exc:
            self.missing(operation, exc)
            return None

    def missing(self, operation: str, exc: BaseException) -> None:
        """The nucleus answered ``operation`` with an error: say so once, with what happens instead."""
        with self._lock:
            first = operation not in self._missing
            self._missing[operation] = error_text(exc)
        if first:
            log.warning("this nucleus does not offer %s (%s): %s", operation, error_text(exc),
                        INSTEAD.get(operation, "the component carries on without it"))
            self._changed()

    def offered(self, operation: str) -> None:
        """``operation`` worked after all (UpdateState once the nucleus's health service is up)."""
        with self._lock:
            was = self._missing.pop(operation, None)
        if was is not None:
            log.info("the nucleus now accepts %s", operation)
            self._changed()

    def is_missing(self, operation: str) -> bool:
        with self._lock:
            return operation in self._missing

    def refused(self, reason: str) -> None:
        """A configuration that arrived without validation was refused; the running one stays."""
        with self._lock:
            self._refused = (reason, dt.datetime.now(dt.timezone.utc))
        self._changed()

    def accepted(self) -> None:
        """A later configuration was applied: the refusal is history."""
        with self._lock:
            was, self._refused = self._refused, None
        if was is not None:
            self._changed()

    def state(self) -> dict[str, Any]:
        """``{"missing": [...], "config_refused": reason, "config_refused_at": ISO time}``: plain JSON, for
        health events and the ``status`` command."""
        with self._lock:
            out: dict[str, Any] = {"missing": sorted(self._missing)}
            if self._refused is not None:
                out["config_refused"] = self._refused[0]
                out["config_refused_at"] = self._refused[1].isoformat().replace("+00:00", "Z")
            return out

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # telemetry trouble must never reach an IPC callback
                log.exception("could not report the nucleus's state")
