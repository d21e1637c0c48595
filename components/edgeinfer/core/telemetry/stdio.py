"""``stdout`` and ``file:PATH`` transports: JSON Lines, one event per line.

A line counts as delivered once written and flushed (``fsync: full`` also fsyncs the file), so a
crash after the write and before the outbox deletes the event repeats that line on the next start:
readers dedupe by ``id`` as for every transport.

The file transport writes whole lines or nothing: a write that fails part-way (ENOSPC, EIO) is cut
back to the size the file had before it, and the send reports failure, so the events stay in the
outbox and are written again, whole, once the disk has room.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, ClassVar

from ..errors import ConfigError
from .config import TelemetryConfig
from .transport import Message, SendResult, Transport

log = logging.getLogger(__name__)


class _LinesTransport(Transport):
    supports_batches: ClassVar[bool] = False
    supports_gzip: ClassVar[bool] = False

    def __init__(self, stream: IO[str] | None, fsync: bool = False) -> None:
        self._stream = stream
        self._fsync = fsync

    def send(self, messages: Sequence[Message], timeout_s: float) -> SendResult:
        result = SendResult()
        try:
            self._write(b"".join(m.payload + b"\n" for m in messages))
        except (OSError, ValueError) as exc:
            return SendResult(error=f"cannot write telemetry to {self.describe()}: {exc}")
        result.acked.update(m.key for m in messages)
        return result

    def _write(self, data: bytes) -> None:
        assert self._stream is not None
        self._stream.write(data.decode())
        self._stream.flush()
        if self._fsync:
            os.fsync(self._stream.fileno())


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
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot open telemetry file {path}: {exc.strerror}",
                              "pass --telemetry file:PATH with a writable path") from exc
        super().__init__(None, fsync)

    def _write(self, data: bytes) -> None:
        """All of ``data`` or none of it: on a failure the file is cut back to its size before."""
        if self._fd < 0:
            raise ValueError("the telemetry file is closed")
        before = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:  # a short write (the disk filled part-way) is followed by the error itself
                view = view[os.write(self._fd, view):]
            if self._fsync:
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, before)
            except OSError as exc:  # pragma: no cover - truncating frees space; only a dead disk refuses
                log.error("could not cut the partial line off %s: %s", self.path, exc)
            raise

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
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
