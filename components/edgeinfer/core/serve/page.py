"""The status page: its static files (shipped as package data) and the JSON document its script polls.

The page is plain HTML + a little JS (static/), no build step and nothing from the network. Every string in
``status_doc`` may be remote-controlled (labels from a model package, rule names and reasons from a deployment):
the page puts them in the DOM as text only (``textContent``), never as markup, and the server sends a CSP that
forbids inline script.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from ..errors import EdgeInferError
from ..redact import redact_any
from .config import ServeConfig
from .health import Session, liveness, readiness
from .recorder import Recorder

STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8"),
          "/page.css": ("page.css", "text/css; charset=utf-8")}


def static_file(path: str) -> tuple[bytes, str] | None:
    """(body, content type) of the page file served at ``path``, or None."""
    entry = STATIC.get(path)
    if entry is None:
        return None
    name, ctype = entry
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes(), ctype


def _stages(stats: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {k: {"p50": v.get("p50"), "p95": v.get("p95")} for k, v in (stats.get("stages_ms") or {}).items()}


def status_doc(session: Session | None, rec: Recorder, cfg: ServeConfig) -> dict[str, Any]:
    alive, ready = liveness(session, rec, cfg), readiness(session, rec, cfg)
    doc: dict[str, Any] = {"time": time.time(), "healthz": alive.to_dict(), "readyz": ready.to_dict(),
                           "fps": round(rec.fps(), 2), "chart": rec.chart(), "alerts": rec.alerts(),
                           "frame_interval_s": cfg.frame_interval_s}
    if session is None:
        return doc
    stats = session.stats()
    doc["device_id"] = session.config.device_id
    doc["status"] = session.status()
    doc["stats"] = redact_any({"frames": stats.get("frames"), "dropped": stats.get("dropped"),
                    "bad_frames": stats.get("bad_frames"), "source": stats.get("source"),
                    "detections": stats.get("detections"), "stages_ms": _stages(stats),
                    "streams": stats.get("streams")})
    service = session.telemetry
    if service is not None:
        o = service.outbox_stats()
        snap = service.snapshot()
        transport = getattr(service, "transport", None)
        doc["telemetry"] = {
            "transport": redact_any(transport.describe()) if transport is not None else "none",
            "connected": transport.status().connected if transport is not None else None,
            "sent_events": snap.sent_events,
            "outbox": None if o is None else {"depth": o.depth, "bytes": o.bytes, "oldest_age_s": o.oldest_age_s,
                                              "evicted": sum(o.evicted.values())},
        }
    return doc


class SnapshotCache:
    """The annotated JPEG, made at most once per ``interval_s`` however many viewers ask."""

    def __init__(self, make: Callable[[], bytes | None], interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._make, self._interval, self._clock = make, interval_s, clock
        self._lock = threading.Lock()
        self._jpeg: bytes | None = None
        self._at = float("-inf")

    def get(self, fresh: bool = False) -> bytes | None:
        """The cached JPEG, made again when older than the interval (or ``fresh``: now)."""
        with self._lock:
            now = self._clock()
            if fresh or now - self._at >= self._interval:
                self._at = now
                with contextlib.suppress(EdgeInferError):  # no frame yet, or the run stopped: the last one stays
                    self._jpeg = self._make() or self._jpeg
            return self._jpeg
