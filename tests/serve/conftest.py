"""Helpers for the serving tests: plain HTTP GETs against the device's server (urllib, no client library)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a GET; an HTTP error status is an answer, not an exception."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    code, body, _ = get(url)
    return code, json.loads(body)


def until(pred: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll a condition another thread or process makes true (an HTTP answer has no event to wait on)."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if value := pred():
            return value
        tick.wait(0.05)
    return pred()
