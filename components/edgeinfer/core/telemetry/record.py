"""The outbox's value types: what goes in (Pending), what came of it (Stored, AppendResult), one
stored row as delivery reads it (Record, also the parameters of its INSERT), and its state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from .events import EventBase

COLUMNS = "n, priority, id, type, seq, topic, model_version, created, payload, size"


class Record(NamedTuple):
    n: int  # row number: increasing, never reused
    priority: int
    id: str
    type: str
    seq: int
    topic: str
    model_version: str
    created: float
    payload: bytes
    size: int = 0  # bytes the row counts against the outbox bound (payload + topic + overhead)


@dataclass(frozen=True, slots=True)
class Pending:
    """An event to store, once per topic (a local-topic copy is a second row), in ``stream``'s order."""

    event: EventBase
    topics: tuple[str, ...]
    stream: str | None = None  # sequence stream; None = the event type


class Stored(NamedTuple):  # a tuple: made once per event on the hot path
    event: EventBase  # with its seq
    payload: bytes  # its encoding, as stored (one copy)

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(slots=True)
class AppendResult:
    stored: list[Stored] = field(default_factory=list)
    rejected: list[tuple[EventBase, str]] = field(default_factory=list)
    evicted: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    evicted: dict[str, int]
    rejected: int
