"""Protocol peers for the hybrid tests: moto's server app over TLS (SageMaker runtime and S3, with its own
results API), an Azure ML scoring server with key auth, and Azurite from npm. Each can be stopped and started
again on the same port (the connection down for a while and back) and slowed down; every request is recorded."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from tests.telemetry.pki import Pki

NPM_PREFIX = Path(__file__).resolve().parents[2] / ".cache" / "npm"


def _tls(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    return ctx


class MotoTLS:
    """moto's server app on https://localhost:<port>. ``delay_s`` holds every request (a slow endpoint);
    ``stop``/``start`` take it off the network and back on the same port."""

    def __init__(self, pki: Pki) -> None:
        self.pki, self.port = pki, 0
        self.app = DomainDispatcherApplication(create_backend_app)
        self.delay_s = 0.0
        self.requests: list[tuple[str, str]] = []
        self._server: Any = None
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/moto-api"):
            self.requests.append((environ["REQUEST_METHOD"], path))
            if self.delay_s:
                self._release.wait(self.delay_s)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def start(self) -> MotoTLS:
        self._release.clear()
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True, ssl_context=_tls(self.pki))
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, name="test-moto", daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()  # held requests end now
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca))

    def reset(self) -> MotoTLS:
        """Forget every backend's state (moto's backends live in this process: answers another test queued
        would otherwise come first)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, context=self.client_context(), timeout=10) as resp:
            assert resp.status == 200, resp.status
        return self

    def set_endpoint_results(self, bodies: list[dict[str, Any]], content_type: str = "application/json") -> None:
        """Queue SageMaker InvokeEndpoint answers through moto's own API."""
        doc = {"results": [{"Body": json.dumps(b), "ContentType": content_type,
                            "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""} for b in bodies]}
        req = urllib.request.Request(f"{self.url}/moto-api/static/sagemaker/endpoint-results",
                                     data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.client_context(), timeout=10) as resp:
            assert resp.status == 201, resp.status


class ScoringServer:
    """An Azure ML online endpoint's scoring URI: POST /score with ``Authorization: Bearer <key>``; answers
    ``answer`` as JSON (401 for a wrong key). Records (content type, deployment header, body size)."""

    def __init__(self, pki: Pki, key: str, answer: dict[str, Any]) -> None:
        self.pki, self.key, self.answer = pki, key, answer
        self.seen: list[dict[str, Any]] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/score"

    def start(self) -> ScoringServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = self.headers.get("Authorization") == f"Bearer {server.key}"
                server.seen.append({"content_type": self.headers.get("Content-Type"), "ok": ok, "body": body,
                                    "deployment": self.headers.get("azureml-model-deployment")})
                out = json.dumps(server.answer if ok else {"message": "unauthorized"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        ctx = _tls(self.pki)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="test-scoring", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def azurite_bin() -> Path | None:
    """azurite-blob from npm, installed under .cache/npm when missing; None when npm is not available."""
    exe = NPM_PREFIX / "node_modules" / ".bin" / "azurite-blob"
    if exe.exists():
        return exe
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "azurite@3"],
                   check=True, capture_output=True, timeout=600)
    return exe if exe.exists() else None


# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """The Azure Storage emulator's blob service on http://127.0.0.1:<port>/devstoreaccount1, data in ``folder``
    (kept across stop/start, as the blob module keeps its own)."""

    def __init__(self, exe: Path, folder: Path) -> None:
        self.exe, self.folder, self.port = exe, folder, free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def start(self, timeout_s: float = 30.0) -> Azurite:
        self._proc = subprocess.Popen([str(self.exe), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                                       "--location", str(self.folder), "--silent", "--skipApiVersionCheck",
                                       "--loose"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # its port opening is the only readiness signal it gives
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"azurite exited with {self._proc.returncode}") from None
                time.sleep(0.1)
        raise RuntimeError("azurite did not open its port")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None
