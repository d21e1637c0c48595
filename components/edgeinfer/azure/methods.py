"""Direct methods: the shared command set (core/control.py) under IoT Edge's names.

``reload`` -> reload, ``setThreshold`` -> set_threshold, ``snapshot`` -> snapshot (the JPEG inline, base64),
``getStats`` -> status. The status code is the outcome's (IoT Hub passes it through to the caller), plus
404 for a method this module does not answer and 413 when the answer would exceed IoT Hub's 128 KB.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.control import Controlled, Controls
from .limits import METHOD_PAYLOAD_MAX_BYTES, json_size

#: method name (IoT Hub's camelCase) -> command
METHODS = {"reload": "reload", "snapshot": "snapshot", "getStats": "status", "setThreshold": "set_threshold"}
#: the largest snapshot JPEG: its base64 (4/3) inside the 128 KB method response, with room for the rest
SNAPSHOT_MAX_BYTES = 72 * 1024


@dataclass(frozen=True, slots=True)
class MethodResult:
    status: int
    payload: Any


class MethodHandlers:
    """Maps a method name and JSON payload to a MethodResult; never raises."""

    def __init__(self, service: Callable[[], Controlled | None], not_running: Callable[[], str],
                 on_change: Callable[[], None] = lambda: None) -> None:
        self._controls = Controls(service, SNAPSHOT_MAX_BYTES, not_running, on_change)

    @property
    def names(self) -> list[str]:
        return list(METHODS)

    def __call__(self, name: str, payload: Any) -> MethodResult:
        command = METHODS.get(name)
        if command is None:
            return MethodResult(404, {"error": f"unknown method {name!r}; this module answers {', '.join(METHODS)}"})
        outcome = self._controls.run(command, payload)
        if not outcome.ok or outcome.result is None:
            return MethodResult(outcome.status, {"error": outcome.error})
        body = outcome.result
        if outcome.jpeg is not None:
            body = {**body, "encoding": "base64", "data": base64.b64encode(outcome.jpeg).decode()}
        if json_size(body) > METHOD_PAYLOAD_MAX_BYTES:
            return MethodResult(413, {"error": f"the answer exceeds IoT Hub's {METHOD_PAYLOAD_MAX_BYTES}-byte method "
                                               "payload limit"})
        return MethodResult(200, body)
