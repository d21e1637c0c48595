"""The transport port: one interface for stdout, files, MQTT5, Greengrass IPC and IoT Edge outputs.

A transport only moves messages and says which ones the far side acknowledged. Retries, ordering,
eviction and backoff live in the outbox and the delivery loop, so every transport gets the same
delivery guarantees. A message counts as delivered only once ``send`` reports it in ``acked``
(MQTT: after its PUBACK); anything not reported stays in the outbox and is sent again later.

``send`` is all a transport must implement (Greengrass IPC and IoT Edge outputs are synchronous).
A transport that can keep messages in flight (MQTT) also overrides ``submit``: the delivery loop
then hands over the next batch while the previous one waits for its acknowledgements.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

from .config import TelemetryConfig


@dataclass(slots=True)
class Message:
    """What goes on the wire: one event, or a JSON array of events of one type for one topic."""

    key: int  # unique within one send() call; acks refer to it
    topic: str
    payload: bytes
    event_type: str
    model_version: str
    count: int = 1  # events in the payload
    batch: bool = False  # payload is a JSON array
    encoding: Literal["identity", "gzip"] = "identity"
    content_type: str = "application/json"


@dataclass(slots=True)
class SendResult:
    acked: set[int] = field(default_factory=set)  # keys the far side acknowledged
    rejected: dict[int, str] = field(default_factory=dict)  # key -> why it was refused for good
    error: str | None = None  # why the rest was not delivered (retried later)


class SendHandle(Protocol):
    """Messages handed over; ``wait`` returns what became of them (by ``timeout_s`` after submit)."""

    def wait(self) -> SendResult: ...


class Sent:
    """A handle for a send that already finished."""

    def __init__(self, result: SendResult) -> None:
        self.result = result

    def wait(self) -> SendResult:
        return self.result


@dataclass(frozen=True, slots=True)
class LinkStatus:
    connected: bool
    error: str | None = None


class Transport(ABC):
    """Moves messages. Implementations are used by one delivery thread; ``status`` from any thread."""

    scheme: ClassVar[str]
    supports_batches: ClassVar[bool] = False  # can carry JSON-array payloads
    supports_gzip: ClassVar[bool] = False  # can carry binary (gzip) payloads
    max_payload_bytes: int | None = None  # transport-specific limit, on top of the config's

    @classmethod
    @abstractmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> Transport:
        """Build from the ``telemetry.transport`` URI. Raise TelemetryError/ConfigError if unusable."""

    def open(self) -> None:  # noqa: B027 - optional hook
        """Start connecting. Must not block for long: connection progress shows in ``status``."""

    @abstractmethod
    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        """Send all; wait up to ``timeout_s`` for acknowledgements; report what was acknowledged."""

    def submit(self, messages: Sequence[Message], timeout_s: float) -> SendHandle:
        """Hand messages over without waiting for their acknowledgements (default: ``send``)."""
        return Sent(self.send(messages, timeout_s))

    def status(self) -> LinkStatus:
        return LinkStatus(connected=True)

    def wait_connected(self, timeout_s: float) -> bool:
        return self.status().connected

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection. Unacknowledged messages stay in the outbox."""

    def describe(self) -> str:
        return self.scheme


class ConnectionWatch:
    """Connection state shared between a client's callbacks and the delivery thread."""

    def __init__(self) -> None:
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._error: str | None = None

    def up(self) -> None:
        with self._lock:
            self._error = None
        self._connected.set()

    def down(self, error: str | None) -> None:
        self._connected.clear()
        with self._lock:
            if error is not None:
                self._error = error

    def set_error(self, error: str) -> None:
        with self._lock:
            self._error = error

    def status(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(connected=self._connected.is_set(), error=self._error)

    def wait(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)
