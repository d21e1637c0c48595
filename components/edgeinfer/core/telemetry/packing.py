"""Outbox rows -> wire messages: one event per message, or JSON-array batches; optional gzip.

Batches hold consecutive events of one type for one topic and model version, in outbox order,
up to ``max_batch_events`` and below the payload limit (measured before gzip, so a batch never
depends on how well it compresses). Gzip and batches are used only where the transport allows.
"""

from __future__ import annotations

import gzip as gzip_lib
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import TelemetryConfig
from .limits import payload_problem
from .record import Record
from .transport import Message, Transport


@dataclass(slots=True)
class Packed:
    messages: list[Message] = field(default_factory=list)
    rows: dict[int, tuple[int, ...]] = field(default_factory=dict)  # message key -> outbox rows
    too_large: list[tuple[int, str]] = field(default_factory=list)  # outbox row -> why


class Packer:
    def __init__(self, cfg: TelemetryConfig, transport: Transport) -> None:
        self.batch = cfg.batch and transport.supports_batches
        self.gzip = cfg.gzip and transport.supports_gzip
        self.max_batch_events = cfg.max_batch_events
        limits = [cfg.max_payload_bytes] + ([transport.max_payload_bytes] if transport.max_payload_bytes else [])
        self.limit = min(limits)

    def pack(self, records: Sequence[Record]) -> Packed:
        if not self.batch:
            return self._singles(records)
        out = Packed()
        group: list[Record] = []
        group_bytes = 0
        for rec in records:
            if len(rec.payload) > self.limit:
                out.too_large.append((rec.n, self._too_large(rec)))
                continue
            fits = (group and len(group) < self.max_batch_events and _same_stream(group[0], rec)
                    and group_bytes + len(rec.payload) + 1 <= self.limit)
            if group and not fits:
                self._add(out, group, b"[" + b",".join(r.payload for r in group) + b"]")
                group, group_bytes = [], 0
            group.append(rec)
            group_bytes += len(rec.payload) + (2 if len(group) == 1 else 1)
        if group:
            self._add(out, group, b"[" + b",".join(r.payload for r in group) + b"]")
        return out

    def _singles(self, records: Sequence[Record]) -> Packed:
        """One message per event: the hot path of live delivery, so one Message per record and no more."""
        out = Packed()
        messages, rows, limit = out.messages, out.rows, self.limit
        for rec in records:
            if len(rec.payload) > limit:
                out.too_large.append((rec.n, self._too_large(rec)))
            elif self.gzip:
                self._add(out, [rec], rec.payload)
            else:
                key = len(messages)
                messages.append(Message(key, rec.topic, rec.payload, rec.type, rec.model_version))
                rows[key] = (rec.n,)
        return out

    def _add(self, out: Packed, recs: list[Record], payload: bytes) -> None:
        """One message carrying ``recs`` (a JSON array when batching), gzipped when asked."""
        first = recs[0]
        if self.gzip:
            payload = gzip_lib.compress(payload, compresslevel=6, mtime=0)
        key = len(out.messages)
        out.messages.append(Message(key=key, topic=first.topic, payload=payload, event_type=first.type,
                                    model_version=first.model_version, count=len(recs), batch=self.batch,
                                    encoding="gzip" if self.gzip else "identity"))
        out.rows[key] = tuple(r.n for r in recs)

    def _too_large(self, rec: Record) -> str:
        return f"{rec.type} event {rec.id}: {payload_problem(len(rec.payload), self.limit)}"


def _same_stream(a: Record, b: Record) -> bool:
    return a.topic == b.topic and a.type == b.type and a.model_version == b.model_version
