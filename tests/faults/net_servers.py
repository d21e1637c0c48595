"""Peers for the outbound-address tests: the azure tests' HTTPS file server plus redirects, a plain HTTP server
(files for GET, a recorder for POST, redirects for both), a certificate for a made-up host name, a port nobody
listens on, and a resolver that answers from a table (the wire's DNS, replaced so no real DNS is asked)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.azure.files_server import FileServer, Seen
from tests.telemetry.pki import Pki


@dataclass
class RedirectingFileServer(FileServer):
    """The HTTPS file server; a path in ``redirects`` answers ``(status, Location)`` instead of a file."""

    redirects: dict[str, tuple[int, str]] = field(default_factory=dict)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        server = self

        class Handler(base):  # type: ignore[misc,valid-type]
            def do_GET(self) -> None:
                hop = server.redirects.get(self.path)
                if hop is None:
                    return super().do_GET()
                server.seen.append(Seen(self.path, self.headers.get("Range"), hop[0]))
                self.send_response(hop[0])
                self.send_header("Location", hop[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None

        return Handler


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class PlainServer:
    """HTTP on 127.0.0.1: GET serves ``files`` (404 otherwise), POST answers ``post_status``; a path in
    ``redirects`` answers ``(status, Location)``. Every request is recorded in ``seen``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, tuple[int, str]] = {}
        self.post_status = 204
        self.seen: list[Request] = []
        self.got = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                server.seen.append(Request(method, self.path, dict(self.headers), self.rfile.read(n) if n else b""))
                server.got.set()
                hop = server.redirects.get(self.path)
                body = server.files.get(self.path) if method == "GET" else None
                if hop:
                    status = hop[0]
                elif method == "GET":
                    status = 200 if body is not None else 404
                else:
                    status = server.post_status
                self.send_response(status)
                if hop:
                    self.send_header("Location", hop[1])
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="test-plain", daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def name_pki(folder: Path, host: str) -> Pki:
    """A CA and a server certificate for ``host`` only (no IP address in it): a client that verified the
    certificate against the address it connected to, not the name, would refuse it."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: str, issuer: str, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(public)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1)))

    ca = (builder("netguard test CA", "netguard test CA", ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (builder(host, "netguard test CA", key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {n: folder / n for n in ("ca.pem", "server.pem", "server.key")}
    paths["ca.pem"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["server.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["server.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    # the file server reads only the server pair; no client certificates in these tests
    return Pki(ca=paths["ca.pem"], server_cert=paths["server.pem"], server_key=paths["server.key"],
               client_cert=paths["server.pem"], client_key=paths["server.key"], wrong_ca=paths["ca.pem"])


class TableResolver:
    """``socket.getaddrinfo`` answered from ``table`` (name -> addresses, or a list of answers given in turn,
    the last one repeated); other names go to the real resolver. Records every name asked."""

    def __init__(self, table: dict[str, Sequence[str] | list[Sequence[str]]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                 flags: int = 0) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        entry = self.table.get(host)
        if entry is None:
            return socket.getaddrinfo(host, port, family, type, proto, flags)
        if entry and not isinstance(entry[0], str):  # answers in turn: a name that rebinds
            turn = sum(1 for h in self.asked if h == host) - 1
            entry = entry[min(turn, len(entry) - 1)]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port or 0)) if ":" not in a else (a, int(port or 0), 0, 0)) for a in entry]
