"""An urllib opener that connects to exactly the address ``netguard.Outbound`` checked.

Connections resolve once, check, and connect to the checked address (a DNS answer that changes between check
and connect cannot redirect the request), while TLS still verifies the certificate against the host name.
Redirects, when followed at all, are re-checked hop by hop (scheme, allow-list, addresses) and bounded; their
bodies are never read. No proxy, no file:, ftp: or data: handler.
"""

from __future__ import annotations

import functools
import http.client
import logging
import socket
import ssl
import string
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urljoin

from .netguard import Outbound
from .redact import redact

log = logging.getLogger(__name__)


class GuardedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the address ``outbound`` checked (one resolution; no second one behind its back)."""

    def __init__(self, host: str, port: int | None = None, *, outbound: Outbound, **kw: Any) -> None:
        super().__init__(host, port, **kw)
        self.outbound = outbound

    def _guarded_socket(self) -> socket.socket:
        sock = self.outbound.connect(self.host, self.port, self.timeout, getattr(self, "source_address", None))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.sock = self._guarded_socket()


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address ``outbound`` checked; the certificate is verified against the host name."""

    def __init__(self, host: str, port: int | None = None, *, outbound: Outbound, context: ssl.SSLContext,
                 **kw: Any) -> None:
        super().__init__(host, port, context=context, **kw)
        self.outbound = outbound
        self.tls_context = context

    def connect(self) -> None:
        sock = self.outbound.connect(self.host, self.port, self.timeout, getattr(self, "source_address", None))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host.strip("[]"))
        except BaseException:
            sock.close()
            raise


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, outbound: Outbound) -> None:
        super().__init__()
        self._outbound = outbound

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(GuardedHTTPConnection, outbound=self._outbound), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, outbound: Outbound, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._outbound, self._tls = outbound, context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(GuardedHTTPSConnection, outbound=self._outbound, context=self._tls),
                            req)


class _Redirects(urllib.request.BaseHandler):
    """Follows GET/HEAD redirects, each hop re-checked, at most ``limit`` of them; never reads their bodies."""

    def __init__(self, outbound: Outbound, limit: int) -> None:
        self._outbound, self._limit = outbound, limit

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: Any) -> Any:
        location = headers.get("location")
        fp.close()  # a redirect's body is not read (it could be of any size)
        if not location or req.get_method() not in ("GET", "HEAD"):
            return None  # the default handler raises HTTPError(code)
        hops = getattr(req, "edgeinfer_hops", 0) + 1
        if hops > self._limit:
            log.info("outbound: %s: more than %d redirects", redact(req.full_url), self._limit)
            raise urllib.error.HTTPError(req.full_url, code, f"more than {self._limit} redirects", headers, None)
        newurl = urljoin(req.full_url, quote(location, encoding="iso-8859-1", safe=string.punctuation))
        log.debug("outbound: %s redirects (%d) to %s", redact(req.full_url), code, redact(newurl))
        self._outbound.check_url(newurl, redirected=True)
        kept = {k: v for k, v in req.header_items() if k.lower() not in ("content-length", "content-type", "host")}
        new = urllib.request.Request(newurl, headers=kept, origin_req_host=req.origin_req_host, unverifiable=True,
                                     method=req.get_method())
        new.edgeinfer_hops = hops  # type: ignore[attr-defined]
        return self.parent.open(new, timeout=req.timeout)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def build_opener(outbound: Outbound, ssl_context: ssl.SSLContext | None = None,
                 max_redirects: int = 0) -> urllib.request.OpenerDirector:
    """An opener for http(s) only, through guarded connections, with no proxy; redirects followed (re-checked)
    up to ``max_redirects`` (0: none, a 3xx is an HTTPError). Check the first URL with ``outbound.check_url``."""
    opener = urllib.request.OpenerDirector()
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.UnknownHandler(), urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(), _HTTPHandler(outbound),
        _HTTPSHandler(outbound, ssl_context or ssl.create_default_context())]
    if max_redirects > 0:
        handlers.append(_Redirects(outbound, min(max_redirects, 20)))
    for handler in handlers:
        opener.add_handler(handler)
    return opener
