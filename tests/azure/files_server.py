"""A local HTTPS file server for model downloads: Range requests (206), 404s, and a fault switch that
cuts a response after N bytes once, to prove downloads resume. Serves on TCP (tests in this process)
and, optionally, on a Unix socket (the module in its network namespace reaches it through
netns_launch.py). Every request is recorded."""

from __future__ import annotations

import re
import socketserver
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.telemetry.pki import Pki


class _QuietOnHangup:
    """A client that stops reading (size limit, TLS refusal) is expected here: no traceback for it."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            socketserver.BaseServer.handle_error(self, request, client_address)  # type: ignore[arg-type]


@dataclass
class Seen:
    path: str
    range: str | None
    status: int


@dataclass
class FileServer:
    pki: Pki
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before dropping, once
    no_range: set[str] = field(default_factory=set)  # paths served whole even when a Range is asked for
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _servers: list[socketserver.BaseServer] = field(default_factory=list)

    def url(self, path: str, host: str | None = None) -> str:
        return f"https://{host or f'127.0.0.1:{self.port}'}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = server.files.get(self.path)
                rng = self.headers.get("Range")
                if body is None:
                    server.seen.append(Seen(self.path, rng, 404))
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and self.path not in server.no_range and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
                    start = int(m.group(1))
                status = 206 if start else 200
                server.seen.append(Seen(self.path, rng, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[start:start + cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body[start:])

        return Handler

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        return ctx

    def _run(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, name="test-files", daemon=True).start()

    def start(self) -> FileServer:
        ctx = self._context()

        class Tcp(_QuietOnHangup, socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):  # type: ignore[no-untyped-def]
                conn, addr = self.socket.accept()
                return ctx.wrap_socket(conn, server_side=True), addr

        tcp = Tcp(("127.0.0.1", 0), self._handler(), bind_and_activate=True)
        self.port = tcp.server_address[1]
        self._run(tcp)
        return self

    def serve_unix(self, path: Path) -> Path:
        ctx = self._context()

        class Unix(_QuietOnHangup, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):  # type: ignore[no-untyped-def]
                conn, _ = self.socket.accept()
                return ctx.wrap_socket(conn, server_side=True), ("files", 0)

        path.unlink(missing_ok=True)
        self._run(Unix(str(path), self._handler()))
        return path

    def stop(self) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()
