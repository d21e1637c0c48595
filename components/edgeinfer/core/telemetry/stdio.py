"""``stdout`` and ``file:PATH`` transports: JSON Lines, one event per line.

A line counts as delivered once written and flushed (``fsync: full`` also fsyncs the file), so a
crash after the write and before the outbox deletes the event repeats that line on the next start:
readers dedupe by ``id`` as for every transport.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, ClassVar

from ..errors import ConfigError
from .config import TelemetryConfig
from .transport import Message, SendResult, Transport


class _LinesTransport(Transport):
    supports_batches: ClassVar[bool] = False
    supports_gzip: ClassVar[bool] = False

    def __init__(self, stream: IO[str], fsync: bool = False) -> None:
        self._stream = stream
        self._fsync = fsync

    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        result = SendResult()
        try:
            for m in messages:
                self._stream.write(m.payload.decode() + "\n")
            self._stream.flush()
            if self._fsync:
                os.fsync(self._stream.fileno())
        except (OSError, ValueError) as exc:
            return SendResult(error=f"cannot write telemetry to {self.describe()}: {exc}")
        result.acked.update(m.key for m in messages)
        return result


class StdoutTransport(_LinesTransport):
    """Events to a text stream (stdout unless another is injected)."""

    scheme: ClassVar[str] = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stdout)

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> StdoutTransport:
        return cls()


class FileTransport(_LinesTransport):
    """Events appended to a JSON Lines file."""

    scheme: ClassVar[str] = "file"

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot open telemetry file {path}: {exc.strerror}",
                              "pass --telemetry file:PATH with a writable path") from exc
        super().__init__(stream, fsync)

    @classmethod
    def from_uri(cls, uri: str, cfg: TelemetryConfig, device_id: str) -> FileTransport:
        path = uri.split(":", 1)[1] if ":" in uri else ""
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ConfigError(f"telemetry transport {uri!r} names no file",
                              "use file:PATH, e.g. file:/tmp/events.jsonl")
        return cls(Path(path).expanduser(), fsync=cfg.fsync == "full")

    def describe(self) -> str:
        return f"file:{self.path}"

    def close(self) -> None:
        self._stream.close()
