"""The device's HTTP server: the standard library's threading server, GET only, a handful of routes.

    /metrics        Prometheus exposition (metrics.py), a CollectorRegistry of this server's own
    /healthz        200 alive / 503 not (health.py), a JSON line saying why
    /readyz         200 ready / 503 not
    /               the status page (page.py, static/); /page.js, /page.css
    /api/status     the JSON the page polls
    /snapshot.jpg   the latest annotated frame (503 before the first)

Bound where ``serve.listen`` says (127.0.0.1:9464 unless the device's local settings say otherwise). Requests
whose Host header is neither an IP address, ``localhost`` nor in ``serve.allowed_hosts`` are refused (a web
page elsewhere cannot read the device through DNS rebinding). Each request runs on its own daemon thread and
only reads the session; nothing here can change what the device does.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import ConfigError
from .config import ServeConfig
from .health import Session, liveness, readiness
from .metrics import registry_for
from .page import SnapshotCache, static_file, status_doc
from .recorder import Recorder

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _host_of(header: str | None) -> str:
    if not header:
        return ""
    host = urlsplit(f"//{header}").hostname
    return host or ""


def host_allowed(header: str | None, allowed: list[str]) -> bool:
    """A Host header naming an IP address, localhost or a configured name (no header: an HTTP/1.0 tool)."""
    if header is None:
        return True
    host = _host_of(header).lower()
    if host in ("localhost", *(a.lower() for a in allowed)):
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: StatusServer


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "edgeinfer"
    sys_version = ""

    def do_GET(self) -> None:
        app = self.server.app
        if not host_allowed(self.headers.get("Host"), app.cfg.allowed_hosts):
            self._send(421, b"unknown Host: add it to serve.allowed_hosts\n", "text/plain; charset=utf-8")
            return
        path = urlsplit(self.path).path
        try:
            self._serve(path)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up (a health check that timed out)
            log.debug("client %s went away during %s", self.address_string(), path)

    def _serve(self, path: str) -> None:
        app = self.server.app
        try:
            route = app.routes.get(path)
            if route is not None:
                self._send(*route())
                return
            page = static_file(path)
            if page is not None:
                self._send(200, *page)
                return
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception:  # a bug must cost one request, never the server or the run
            log.exception("serving %s failed", path)
            self._send(500, b"internal error (see the device log)\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        self._send(405, b"read only\n", "text/plain; charset=utf-8", {"Allow": "GET"})

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _json(code: int, doc: Any) -> tuple[int, bytes, str]:
    return code, json.dumps(doc, default=str).encode() + b"\n", "application/json"


class StatusServer:
    """``start()`` binds and serves on a thread; ``stop()`` ends it. ``session`` gives the run session now
    (None before the first configuration); ``recorder`` must be one of that session's sinks."""

    def __init__(self, cfg: ServeConfig, session: Callable[[], Session | None], recorder: Recorder,
                 announce: Path | None = None) -> None:
        self.cfg = cfg
        self._session = session
        self.recorder = recorder
        self._announce = announce
        self._registry = registry_for(session, recorder, cfg)
        self._snapshots = SnapshotCache(self._snapshot, cfg.frame_interval_s)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.routes: dict[str, Callable[[], tuple[int, bytes, str]]] = {
            "/metrics": lambda: (200, generate_latest(self._registry), CONTENT_TYPE_LATEST),
            "/healthz": self._healthz, "/readyz": self._readyz, "/api/status": self._status,
            "/snapshot.jpg": self._jpeg,
        }

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        host, port = self._httpd.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        return f"http://{shown}:{port}"

    def start(self) -> None:
        host, port = self.cfg.address()
        try:
            httpd = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.cfg.listen}: {exc.strerror or exc}",
                              "pick a free port (serve.listen or --serve HOST:PORT)") from exc
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="edgeinfer-serve", daemon=True)
        self._thread.start()
        if self._announce is not None:
            self._write_announce()
        log.info("serving /metrics, /healthz, /readyz and the status page on %s", self.url)

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._announce is not None:
            self._announce.unlink(missing_ok=True)
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _write_announce(self) -> None:
        """``{url, pid}`` for a health check in another process (the IoT Edge image's HEALTHCHECK)."""
        assert self._announce is not None
        try:
            self._announce.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._announce.with_suffix(".tmp")
            tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
            tmp.replace(self._announce)
        except OSError as exc:
            log.warning("could not write %s (the health check falls back to its own): %s", self._announce, exc)

    # -- routes ------------------------------------------------------------------------------------
    def _healthz(self) -> tuple[int, bytes, str]:
        v = liveness(self._session(), self.recorder, self.cfg)
        return _json(200 if v.ok else 503, v.to_dict())

    def _readyz(self) -> tuple[int, bytes, str]:
        v = readiness(self._session(), self.recorder, self.cfg)
        return _json(200 if v.ok else 503, v.to_dict())

    def _status(self) -> tuple[int, bytes, str]:
        return _json(200, status_doc(self._session(), self.recorder, self.cfg))

    def _snapshot(self) -> bytes | None:
        session = self._session()
        return None if session is None else session.snapshot()

    def keep_last_frame(self) -> None:
        """Make the snapshot now, so the page still shows the last frame once the run has stopped."""
        self._snapshots.get(fresh=True)

    def _jpeg(self) -> tuple[int, bytes, str]:
        jpeg = self._snapshots.get()
        if jpeg is None:
            return 503, b"no frame yet\n", "text/plain; charset=utf-8"
        return 200, jpeg, "image/jpeg"
