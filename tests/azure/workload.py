"""A fake IoT Edge workload API on a Unix socket, as aziot-edged serves it to modules.

``create_from_edge_environment`` calls two endpoints: ``GET /trust-bundle`` (the CA that signed the
edgeHub server certificate) and ``POST /modules/{module}/genid/{generation}/sign`` (HMAC-SHA256 of
the SAS string with the module's key). Both answer as the real daemon does; every request is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass
class WorkloadRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, object] | None


@dataclass
class FakeWorkload:
    socket_path: Path
    trust_bundle: str
    module_id: str
    generation_id: str
    key: bytes = b"edgeinfer-test-module-key"
    requests: list[WorkloadRequest] = field(default_factory=list)
    _server: socketserver.UnixStreamServer | None = None

    @property
    def uri(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> FakeWorkload:
        workload = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> tuple[str, dict[str, object] | None]:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                workload.requests.append(WorkloadRequest(self.command, url.path, parse_qs(url.query), body))
                return url.path, body

            def do_GET(self) -> None:
                path, _ = self._record()
                if path == "/trust-bundle":
                    self._answer(200, {"certificate": workload.trust_bundle})
                else:
                    self._answer(404, {"message": f"no route {path}"})

            def do_POST(self) -> None:
                path, body = self._record()
                expected = f"/modules/{workload.module_id}/genid/{workload.generation_id}/sign"
                if path != expected or not body or body.get("algo") != "HMACSHA256":
                    self._answer(404, {"message": f"no route {path}"})
                    return
                digest = hmac.new(workload.key, base64.b64decode(str(body["data"])), hashlib.sha256).digest()
                self._answer(200, {"digest": base64.b64encode(digest).decode()})

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def get_request(self):  # type: ignore[no-untyped-def]
                conn, _ = self.socket.accept()
                return conn, ("workload", 0)  # BaseHTTPRequestHandler wants a (host, port) client address

        self.socket_path.unlink(missing_ok=True)
        self._server = Server(str(self.socket_path), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-workload", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
