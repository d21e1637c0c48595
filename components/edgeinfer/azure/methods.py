"""Direct methods: ``reload``, ``snapshot``, ``getStats``, ``setThreshold``.

Status codes (IoT Hub passes them through to the caller):
200 done; 400 bad payload; 404 unknown method; 409 the module cannot do it now (e.g. no frame yet);
413 the answer would exceed IoT Hub's 128 KB; 422 the model was rejected (the old one keeps running);
503 no model is running (see the reported ``state``/``last_error``); 500 an unexpected error.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from ..core.config import EdgeInferConfig
from ..core.errors import ConfigError, EdgeInferError, ModelError
from ..core.remote import check_reload_path
from .limits import METHOD_PAYLOAD_MAX_BYTES, json_size

log = logging.getLogger(__name__)

SNAPSHOT_MAX_BYTES = 96 * 1024  # base64 JPEG inside the 128 KB method response


class Service(Protocol):
    @property
    def config(self) -> EdgeInferConfig: ...

    def reload_model(self, path: str | None = None) -> dict[str, Any]: ...

    def snapshot(self) -> bytes: ...

    def stats(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def set_threshold(self, value: float) -> None: ...


@dataclass(frozen=True, slots=True)
class MethodResult:
    status: int
    payload: Any


class BadRequest(Exception):
    pass


def _error(status: int, message: str) -> MethodResult:
    return MethodResult(status, {"error": message})


def _object(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise BadRequest(f"payload must be a JSON object, got {type(payload).__name__}")
    return payload


def fit_jpeg(jpeg: bytes, max_bytes: int) -> tuple[bytes, int, int]:
    """Re-encode smaller (quality, then size) until the base64 of the JPEG fits ``max_bytes``."""
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise EdgeInferError("the snapshot is not a JPEG OpenCV can decode", "check OpenCV's JPEG support")
    image = decoded
    h, w = image.shape[:2]
    quality = 85
    while len(jpeg) * 4 // 3 + 4 > max_bytes:
        if quality > 50:
            quality -= 15
        else:
            image = cv2.resize(image, (max(1, image.shape[1] * 3 // 4), max(1, image.shape[0] * 3 // 4)),
                               interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise EdgeInferError("could not re-encode the snapshot", "check OpenCV's JPEG support")
        jpeg = buf.tobytes()
        h, w = image.shape[:2]
    return jpeg, w, h


class MethodHandlers:
    """Maps a method name and JSON payload to a MethodResult; never raises."""

    def __init__(self, service: Callable[[], Service | None], not_running: Callable[[], str],
                 on_change: Callable[[], None] = lambda: None) -> None:
        self._service = service
        self._not_running = not_running
        self._on_change = on_change
        self._table: dict[str, Callable[[Service, Any], MethodResult]] = {
            "reload": self._reload, "snapshot": self._snapshot, "getStats": self._stats,
            "setThreshold": self._threshold}

    @property
    def names(self) -> list[str]:
        return list(self._table)

    def __call__(self, name: str, payload: Any) -> MethodResult:
        handler = self._table.get(name)
        if handler is None:
            return _error(404, f"unknown method {name!r}; this module answers {', '.join(self._table)}")
        service = self._service()
        if service is None:
            return _error(503, f"no model is running: {self._not_running()}")
        try:
            result = handler(service, payload)
        except BadRequest as exc:
            return _error(400, str(exc))
        except ConfigError as exc:
            return _error(400, str(exc))
        except ModelError as exc:
            return _error(422, str(exc))
        except EdgeInferError as exc:
            return _error(409, str(exc))
        except Exception as exc:
            log.exception("direct method %s failed", name)
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")
        if json_size(result.payload) > METHOD_PAYLOAD_MAX_BYTES:
            return _error(413, f"the answer exceeds IoT Hub's {METHOD_PAYLOAD_MAX_BYTES}-byte method payload limit")
        return result

    def _reload(self, service: Service, payload: Any) -> MethodResult:
        path = _object(payload).get("path")
        if path is not None and not isinstance(path, str):
            raise BadRequest("path must be a string (a model package folder, .zip or model file on the device)")
        check_reload_path(path, service.config.remote)  # a method is remote input: only under remote.model_dirs
        model = service.reload_model(path)
        self._on_change()
        return MethodResult(200, {"model": model})

    def _snapshot(self, service: Service, payload: Any) -> MethodResult:
        limit = _object(payload).get("max_bytes", SNAPSHOT_MAX_BYTES)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1024 <= limit <= SNAPSHOT_MAX_BYTES:
            raise BadRequest(f"max_bytes must be an integer from 1024 to {SNAPSHOT_MAX_BYTES}")
        jpeg, width, height = fit_jpeg(service.snapshot(), limit)
        return MethodResult(200, {"content_type": "image/jpeg", "encoding": "base64", "width": width,
                                  "height": height, "bytes": len(jpeg), "data": base64.b64encode(jpeg).decode()})

    def _stats(self, service: Service, payload: Any) -> MethodResult:
        _object(payload)
        return MethodResult(200, {"status": service.status(), "stats": service.stats()})

    def _threshold(self, service: Service, payload: Any) -> MethodResult:
        value = payload.get("value", payload.get("threshold")) if isinstance(payload, dict) else payload
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise BadRequest("send the threshold as a number from 0 to 1, e.g. {\"value\": 0.6}")
        service.set_threshold(float(value))
        self._on_change()
        return MethodResult(200, {"threshold": float(value)})
