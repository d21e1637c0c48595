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

from tests.azure import twin_query
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
    device_twins: dict[str, dict[str, Any]] = field(default_factory=dict)  # tags (e.g. tags.ring) per device
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    clock: Any = time.time  # seconds since the epoch; a test may set its own (configuration times)
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

    def _twins(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        devices = [{"deviceId": d, "tags": {}, **self.device_twins.get(d, {})} for d in sorted(self.devices)]
        return devices, [{**t, "deviceId": d, "moduleId": m} for (d, m), t in self.module_twins.items()]

    def _with_metrics(self, cid: str) -> dict[str, Any]:
        """The configuration as IoT Hub answers it: system metrics and each custom metric query counted now."""
        c = self.configurations[cid]
        devices, modules = self._twins()
        targeted = [d for d in devices if c.get("targetCondition") and twin_query.matches(d, c["targetCondition"])]
        applied = twin_query.run(f"SELECT deviceId FROM devices.modules WHERE moduleId = '$edgeAgent' AND "
                                 f"configurations.[[{cid}]].status = 'Applied'", devices, modules)
        custom = {name: len(twin_query.run(q, devices, modules))
                  for name, q in ((c.get("metrics") or {}).get("queries") or {}).items()}
        return {**c, "systemMetrics": {"results": {"targetedCount": len(targeted), "appliedCount": len(applied)},
                                       "queries": {}},
                "metrics": {**(c.get("metrics") or {}), "results": custom}}

    def _route(self, method: str, path: str, body: Any, headers: Any = None) -> tuple[int, Any]:
        if m := re.fullmatch(r"/configurations/([^/]+)", path):
            cid = urllib.parse.unquote(m.group(1))
            match = (headers or {}).get("If-Match")
            if method == "PUT" and match is not None:  # an update: content and id are immutable
                old = self.configurations.get(cid)
                if old is None:
                    return 404, {"Message": "not found"}
                if match not in ("*", old["etag"]):
                    return 412, {"Message": "ErrorCode:PreconditionFailed;etag mismatch"}
                if body.get("content") not in (None, old["content"]):
                    return 400, {"Message": "ErrorCode:ArgumentInvalid;configuration content cannot be updated"}
                for key in ("labels", "targetCondition", "priority", "metrics"):
                    if key in body:
                        old[key] = body[key]
                old["etag"] = base64.b64encode(str(int(base64.b64decode(old["etag"])) + 1).encode()).decode()
                old["lastUpdatedTimeUtc"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock()))
                return 200, self._with_metrics(cid)
            if method == "PUT":
                if cid in self.configurations:
                    return 409, {"Message": f"ErrorCode:ConfigurationAlreadyExists;{cid} exists"}
                made = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock()))
                self.configurations[cid] = {**body, "etag": "MQ==", "createdTimeUtc": made, "lastUpdatedTimeUtc": made}
                return 201, self._with_metrics(cid)
            if method == "GET":
                return (200, self._with_metrics(cid)) if cid in self.configurations else (404, {"Message": "not found"})
        if (m := re.fullmatch(r"/devices/([^/]+)/applyConfigurationContent", path)) and method == "POST":
            return (204, None) if urllib.parse.unquote(m.group(1)) in self.devices else (404, {"Message": "no device"})
        if path == "/devices/query" and method == "POST":
            return 200, twin_query.run(body["query"], *self._twins())
        if (m := re.fullmatch(r"/twins/([^/]+)/modules/([^/]+)", path)) and method == "GET":
            key = (urllib.parse.unquote(m.group(1)), urllib.parse.unquote(m.group(2)))
            return (200, self.module_twins[key]) if key in self.module_twins else (404, {"Message": "no module"})
        return 404, {"Message": f"no route {method} {path}"}

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
                    status, answer = hub._route(self.command, url.path, body, self.headers)
                continuation = ""
                if url.path == "/devices/query" and status == 200:  # pages: x-ms-max-item-count, x-ms-continuation
                    start = int(self.headers.get("x-ms-continuation") or 0)
                    size = int(self.headers.get("x-ms-max-item-count") or 100)
                    continuation = str(start + size) if start + size < len(answer) else ""
                    answer = answer[start:start + size]
                hub.calls.append(Call(self.command, url.path, query, body, status))
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                if answer is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                if url.path == "/devices/query":
                    self.send_header("x-ms-item-type", "Twin")
                    self.send_header("x-ms-continuation", continuation)
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
