"""boto3 over netguard: a client's requests sent through the guarded urllib opener, not urllib3.

botocore signs the request, then emits ``before-send``; the first handler that returns a response ends the send.
``guard(client, outbound)`` registers one (first) that checks the URL against the allow-list, connects to the
address netguard checked (link-local and metadata addresses refused after DNS) and returns the answer as
botocore's ``AWSResponse``. No redirects, no proxy, no retries (the caller's budget and breaker decide).
"""

from __future__ import annotations

import http.client
import io
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from ..core.netguard import Outbound
from ..core.netopener import build_opener

log = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 32 * 1024**2
DROPPED_HEADERS = frozenset({"expect"})  # urllib sends the body at once; no 100-continue handshake


class _Raw:
    """What botocore reads an answer from (``stream`` for whole bodies, ``read`` for streaming ones)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def stream(self, amt: int = 1 << 16, decode_content: bool = False) -> Iterator[bytes]:
        while chunk := self._buf.read(amt):
            yield chunk

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        return self._buf.read(amt) if amt is not None else self._buf.read()

    def close(self) -> None:
        self._buf.close()


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)


class GuardedSend:
    """The ``before-send`` handler; ``timeout_s`` is each socket operation's limit (set per call)."""

    def __init__(self, outbound: Outbound, ssl_context: ssl.SSLContext | None = None, timeout_s: float = 30.0) -> None:
        self.outbound, self.timeout_s = outbound, timeout_s
        self._opener = build_opener(outbound, ssl_context)

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        url = request.url
        self.outbound.check_url(url)  # Blocked: raised through the client call, never retried
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        headers = {k: (v.decode("latin-1") if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()
                   if k.lower() not in DROPPED_HEADERS}
        req = urllib.request.Request(url, data=body or None, method=request.method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                status, answer_headers, data = resp.status, resp.headers, resp.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            status, answer_headers, data = exc.code, exc.headers, exc.read(MAX_ANSWER_BYTES)
            exc.close()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if _timed_out(exc):
                raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
            raise EndpointConnectionError(endpoint_url=url, error=getattr(exc, "reason", exc)) from exc
        return AWSResponse(url, status, dict(answer_headers.items()), _Raw(data))


def ssl_context(ca_file: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def guard(client: Any, outbound: Outbound, ca_file: str | None = None) -> GuardedSend:
    """Send every request of ``client`` (a boto3 client) through netguard; returns the handler (its timeout)."""
    send = GuardedSend(outbound, ssl_context(ca_file))
    client.meta.events.register_first("before-send", send)
    return send
