"""requests (under azure-core) over netguard: every connection of a session made to an address netguard checked.

``guarded_session(outbound)``: a ``requests.Session`` that ignores proxy variables, checks each URL against the
allow-list and opens its sockets with ``Outbound.connect`` (names resolved once, link-local and metadata
addresses refused), TLS verified against the host name as usual.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..core.netguard import Outbound


def _classes(outbound: Outbound) -> dict[str, type]:
    def new_conn(self: Any) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        return outbound.connect(self._dns_host, self.port, timeout, self.source_address)

    conn = type("GuardedConnection", (HTTPConnection,), {"_new_conn": new_conn})
    sconn = type("GuardedTLSConnection", (HTTPSConnection,), {"_new_conn": new_conn})
    return {"http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": conn}),
            "https": type("GuardedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": sconn})}


class GuardedAdapter(HTTPAdapter):
    def __init__(self, outbound: Outbound) -> None:
        self._outbound = outbound
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _classes(self._outbound)

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._outbound.check_url(request.url)
        return super().send(request, *args, **kwargs)


def guarded_session(outbound: Outbound) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment
    adapter = GuardedAdapter(outbound)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
