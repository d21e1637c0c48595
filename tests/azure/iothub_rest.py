"""A local HTTPS stand-in for IoT Hub's service REST API, for the real azure-iot-hub client.

It checks what the real service checks first: the SharedAccessSignature (HMAC-SHA256 of
``quote_plus(host) + "\\n" + expiry`` with the policy key), the api-version, the method and path; it
keeps every request (with its JSON body) and answers the few operations edgeinfer uses:
PUT/GET ``/configurations/{id}``, POST ``/devices/{id}/applyConfigurationContent``,
POST ``/devices/query`` and GET ``/twins/{device}/modules/{module}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socketserver
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.telemetry.pki import Pki

API_VERSION = "2021-04-12"
KEY = base64.b64encode(b"edgeinfer-test-iothubowner-key-0123456789").decode()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


@dataclass
class FakeIotHubRest:
    pki: Pki
    key_name: str = "iothubowner"
    key: str = KEY
    devices: set[str] = field(default_factory=set)
    configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    module_twins: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: socketserver.TCPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connection_string(self, key: str | None = None) -> str:
        return f"HostName={self.host};SharedAccessKeyName={self.key_name};SharedAccessKey={key or self.key}"

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("SharedAccessSignature "):
            return False
        fields = dict(p.split("=", 1) for p in header[len("SharedAccessSignature "):].split("&"))
        if fields.get("skn") != self.key_name or int(fields.get("se", "0")) < time.time():
            return False
        if urllib.parse.unquote_plus(fields.get("sr", "")) != self.host:
            return False
        message = f"{fields['sr']}\n{fields['se']}".encode()
        expected = base64.b64encode(hmac.new(base64.b64decode(self.key), message, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(urllib.parse.unquote(fields.get("sig", "")), expected)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if m := re.fullmatch(r"/configurations/([^/]+)", path):
            cid = urllib.parse.unquote(m.group(1))
            if method == "PUT":
                if cid in self.configurations:
                    return 409, {"Message": f"ErrorCode:ConfigurationAlreadyExists;{cid} exists"}
                stored = {**body, "etag": "MQ==", "systemMetrics": {"results": {"targetedCount": len(self.devices),
                                                                               "appliedCount": 0}, "queries": {}}}
                self.configurations[cid] = stored
                return 201, stored
            if method == "GET":
                found = self.configurations.get(cid)
                return (200, found) if found else (404, {"Message": "not found"})
        if (m := re.fullmatch(r"/devices/([^/]+)/applyConfigurationContent", path)) and method == "POST":
            return (204, None) if urllib.parse.unquote(m.group(1)) in self.devices else (404, {"Message": "no device"})
        if path == "/devices/query" and method == "POST":
            return 200, self._query(body["query"])
        if (m := re.fullmatch(r"/twins/([^/]+)/modules/([^/]+)", path)) and method == "GET":
            key = (urllib.parse.unquote(m.group(1)), urllib.parse.unquote(m.group(2)))
            return (200, self.module_twins[key]) if key in self.module_twins else (404, {"Message": "no module"})
        return 404, {"Message": f"no route {method} {path}"}

    def _query(self, query: str) -> list[dict[str, Any]]:
        module = re.search(r"moduleId = '([^']+)'", query)
        applied = re.search(r"configurations\.\[\[([^\]]+)\]\]\.status = 'Applied'", query)
        rows = [t for (_, mid), t in self.module_twins.items() if module and mid == module.group(1)]
        if applied:
            rows = [t for t in rows if t.get("configurations", {}).get(applied.group(1), {}).get("status") == "Applied"]
        return rows

    def start(self) -> FakeIotHubRest:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if not hub._authorized(self.headers.get("Authorization")):
                    status, answer = 401, {"Message": "ErrorCode:IotHubUnauthorizedAccess;Unauthorized"}
                elif query.get("api-version") != [API_VERSION]:
                    status, answer = 400, {"Message": f"unsupported api-version {query.get('api-version')}"}
                else:
                    status, answer = hub._route(self.command, url.path, body)
                hub.calls.append(Call(self.command, url.path, query, body, status))
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                if answer is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                if url.path == "/devices/query":
                    self.send_header("x-ms-item-type", "Twin")
                    self.send_header("x-ms-continuation", "")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True

            def get_request(self):  # type: ignore[no-untyped-def]
                conn, addr = self.socket.accept()
                return ctx.wrap_socket(conn, server_side=True), addr

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="fake-iothub-rest", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
