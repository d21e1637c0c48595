"""The cloud client port, and how a configured endpoint finds its client.

A client sends one request and returns the answer's bytes; it never retries (the budget and the breaker
decide what is sent). Clients are registered under the entry point group ``edgeinfer.fallback_clients`` by
endpoint type (``sagemaker``, ``azureml``: ``edgeinfer.hybrid``), so the core imports no vendor SDK, and a
device without boto3 runs until a SageMaker endpoint is configured, which then says what to install.
Tests and hosts inject their own factories instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .. import plugins
from ..errors import EdgeInferError
from ..netguard import Outbound

CLIENTS = "edgeinfer.fallback_clients"


@dataclass(frozen=True, slots=True)
class Reply:
    body: bytes
    content_type: str


class Unreachable(EdgeInferError):
    """No answer: the connection failed, was refused or timed out (the device may be offline)."""


class Refused(EdgeInferError):
    """The endpoint (or netguard) answered no: an HTTP error, throttling, a blocked host."""


class CloudClient(Protocol):
    name: str

    def invoke(self, body: bytes, content_type: str, accept: str, timeout_s: float) -> Reply: ...

    def close(self) -> None: ...


#: (endpoint settings, the outbound policy its connections follow) -> client
ClientFactory = Callable[[Any, Outbound], CloudClient]


def client_for(endpoint: Any, outbound: Outbound, factories: Mapping[str, ClientFactory] | None = None
               ) -> CloudClient:
    """The client for ``endpoint`` (a SageMakerEndpoint / AzureMLEndpoint): an injected factory, else the
    installed plugin of its type. ConfigError, with what to install, when there is none."""
    kind = endpoint.type
    if factories is not None and kind in factories:
        return factories[kind](endpoint, outbound)
    cls = plugins.load_configured(CLIENTS, kind, "fallback client")
    return cls.from_config(endpoint, outbound)
