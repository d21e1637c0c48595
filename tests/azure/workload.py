"""A fake IoT Edge workload API on a Unix socket, as aziot-edged serves it to modules.

``create_from_edge_environment`` calls two endpoints: ``GET /trust-bundle`` (the CA that signed the
edgeHub server certificate) and ``POST /modules/{module}/genid/{generation}/sign`` (HMAC-SHA256 of
the SAS string with the module's key). ``POST .../encrypt`` and ``.../decrypt`` are AEAD with the daemon's
master encryption key, the body's ``initializationVector`` and ``moduleId + genId`` as associated data
(edgelet-http-workload's data routes): what one module generation wrapped, another cannot unwrap. All
answer as the real daemon does; every request is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


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
    master_key: bytes = field(default_factory=lambda: os.urandom(32))  # iotedge_master_encryption_id
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
                parts = path.split("/")
                if len(parts) == 6 and parts[1] == "modules" and parts[3] == "genid" and parts[5] in ("encrypt",
                                                                                                      "decrypt"):
                    self._data(unquote(parts[2]), unquote(parts[4]), parts[5], body)
                    return
                expected = f"/modules/{workload.module_id}/genid/{workload.generation_id}/sign"
                if path != expected or not body or body.get("algo") != "HMACSHA256":
                    self._answer(404, {"message": f"no route {path}"})
                    return
                digest = hmac.new(workload.key, base64.b64decode(str(body["data"])), hashlib.sha256).digest()
                self._answer(200, {"digest": base64.b64encode(digest).decode()})

            def _data(self, module: str, gen: str, op: str, body: dict[str, object] | None) -> None:
                if module != workload.module_id:  # auth_caller: the calling process must be that module
                    self._answer(403, {"message": f"Module not found: {module}"})
                    return
                field_in = "plaintext" if op == "encrypt" else "ciphertext"
                if not isinstance(body, dict) or not isinstance(body.get(field_in), str) \
                        or not isinstance(body.get("initializationVector"), str):
                    self._answer(400, {"message": "missing request body"})
                    return
                try:
                    data = base64.b64decode(str(body[field_in]), validate=True)
                    iv = base64.b64decode(str(body["initializationVector"]), validate=True)
                except ValueError as exc:
                    self._answer(400, {"message": f"invalid base64 encoding: {exc}"})
                    return
                aead, aad = AESGCM(workload.master_key), (module + gen).encode()
                try:
                    out = aead.encrypt(iv, data, aad) if op == "encrypt" else aead.decrypt(iv, data, aad)
                except (InvalidTag, ValueError):
                    self._answer(500, {"message": "could not decrypt: the ciphertext does not authenticate"})
                    return
                self._answer(200, {("ciphertext" if op == "encrypt" else "plaintext"): base64.b64encode(out).decode()})

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
