"""File sinks: ``results.jsonl`` (one line per frame, rotated), annotated frames (capped), ``summary.json``.

Bounded, so a stream that runs for months cannot fill the disk:

* ``results.jsonl`` is rotated when the next line would take it past ``output.results_max_bytes``:
  ``results.jsonl.1`` is the newest rotated file, up to ``output.results_keep`` of them, so results
  take at most ``(results_keep + 1) * results_max_bytes``. A run starts a new set (like the file
  itself, the rotations of an earlier run are removed).
* Annotated frames are capped at ``output.annotated_max_files`` files and ``output.annotated_max_bytes``
  bytes, the oldest removed first, counting the JPEGs an earlier run left in the folder.

A write error (disk full, I/O error, the folder removed) disables that one sink, not the run: it is
logged once, counted, and ``error`` says why (``sink_errors(sinks)`` collects them); the other sinks
go on, and the disabled one tries again every ``RETRY_S`` seconds, so it heals when space returns.
Lines are whole or absent: a write that fails part-way is cut back. ``summary["sink_errors"]``
reports, per sink that failed, the last error, the failed writes and the frames not written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2

from ..annotate import annotate
from ..types import FrameResult
from .base import RunContext

if TYPE_CHECKING:
    from ..config import OutputConfig

log = logging.getLogger(__name__)
RETRY_S = 30.0
BUFFER_BYTES = 1 << 16
DEFAULT_RESULTS_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_ANNOTATED_MAX_FILES = 1000
DEFAULT_ANNOTATED_MAX_BYTES = 256 * 1024 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a short write (the disk filled part-way) is followed by the error itself
        view = view[os.write(fd, view):]


class _GuardedSink:
    """A sink whose write errors disable it (logged once, counted) and which tries again later."""

    name: ClassVar[str] = "sink"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.error: str | None = None  # why it is disabled now; None while it writes
        self.last_error: str | None = None
        self.errors = 0  # failed writes
        self.skipped = 0  # frames not written because of them
        self._clock = clock
        self._retry_at = 0.0

    def _fail(self, where: Path, exc: OSError, lost: int = 1) -> None:
        self.errors += 1
        self.skipped += lost
        first = self.error is None
        self.error = self.last_error = f"cannot write {where}: {exc.strerror or exc}"
        self._retry_at = self._clock() + RETRY_S
        if first:
            log.error("%s sink disabled: %s -> free space or fix %s; the run goes on and the sink tries again "
                      "every %.0f s", self.name, self.error, where.parent, RETRY_S)

    def _ready(self) -> bool:
        """False (frame counted as skipped) while disabled and before the next try."""
        if self.error is not None and self._clock() < self._retry_at:
            self.skipped += 1
            return False
        return True

    def _ok(self) -> None:
        if self.error is not None:
            log.warning("%s sink writes again (%d frames not written while it could not)", self.name, self.skipped)
            self.error = None

    def _report(self, summary: dict[str, Any]) -> None:
        if self.errors:
            summary.setdefault("sink_errors", {})[self.name] = {"error": self.error or self.last_error,
                                                                "failed_writes": self.errors,
                                                                "frames_not_written": self.skipped}


class JsonlSink(_GuardedSink):
    """One JSON object per frame: ``source``, ``frame``, ``ts``, and the task's results in frame pixels."""

    name: ClassVar[str] = "results"

    def __init__(self, path: Path, max_bytes: int = DEFAULT_RESULTS_MAX_BYTES, keep: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self.rotations = 0
        self._fd: int | None = None
        self._size = 0  # bytes of whole lines in the live file
        self._buf: list[bytes] = []
        self._pending = 0
        self._runs = 0  # pipelines this sink has served

    def rotated(self) -> list[Path]:
        """The rotated files that exist, newest first."""
        return [p for i in range(1, self.keep + 1) if (p := self._nth(i)).exists()]

    def start(self, ctx: RunContext) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._runs:  # the same run's next pipeline (a restart, a new source): carry on appending
                self._reopen()
            else:
                for old in self._old_rotations():  # a new run starts a new set, as results.jsonl itself does
                    old.unlink(missing_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self._size = 0
            self._runs += 1
        except OSError as exc:
            self._fail(self.path, exc, lost=0)

    def on_result(self, result: FrameResult) -> None:
        if not self._ready():
            return
        line = (json.dumps(result.to_dict(), separators=(",", ":")) + "\n").encode()
        try:
            if self._fd is None:
                self._reopen()
            if self._size + self._pending + len(line) > self.max_bytes and self._size + self._pending > 0:
                self._flush()
                self._rotate()
            self._buf.append(line)
            self._pending += len(line)
            if self._pending >= BUFFER_BYTES:
                self._flush()
        except OSError as exc:
            lost = max(1, len(self._buf))
            self._buf.clear()
            self._pending = 0
            self._close_fd()
            self._fail(self.path, exc, lost)
            return
        self._ok()

    def close(self, summary: dict[str, Any]) -> None:
        try:
            if self._fd is not None:
                self._flush()
        except OSError as exc:
            self._fail(self.path, exc, len(self._buf))
        self._buf.clear()
        self._pending = 0
        self._close_fd()
        self._report(summary)

    def _flush(self) -> None:
        if not self._buf:
            return
        assert self._fd is not None
        data = b"".join(self._buf)
        try:
            _write_all(self._fd, data)
        except OSError:
            with contextlib.suppress(OSError):  # whole lines or none: cut the partial write off
                os.ftruncate(self._fd, self._size)
            raise
        self._buf.clear()
        self._pending = 0
        self._size += len(data)

    def _rotate(self) -> None:
        """results.jsonl -> .1 -> .2 ... (.keep is overwritten); renames need no free space."""
        self._close_fd()
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.keep - 1, 0, -1):
                if (src := self._nth(i)).exists():
                    os.replace(src, self._nth(i + 1))
            os.replace(self.path, self._nth(1))
        self.rotations += 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0

    def _reopen(self) -> None:
        """After an error: append to what is there (whole lines: a partial one was cut off)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def _nth(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _old_rotations(self) -> Iterable[Path]:
        if not self.path.parent.is_dir():
            return []
        pattern = re.compile(re.escape(self.path.name) + r"\.\d+")
        return [p for p in self.path.parent.iterdir() if pattern.fullmatch(p.name)]


def _stem(source: str) -> str:
    name = Path(source).stem if "://" not in source else source.split("://", 1)[1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "frame"


_STILLS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class AnnotatedFramesSink(_GuardedSink):
    """JPEGs with results drawn, named ``[<stream>-]<source stem>[-<frame>].jpg``; every Nth frame of a stream;
    at most ``max_files`` files and ``max_bytes`` bytes in the folder, oldest removed first."""

    name: ClassVar[str] = "annotated"

    def __init__(self, folder: Path, every: int = 1, quality: int = 90,
                 max_files: int = DEFAULT_ANNOTATED_MAX_FILES, max_bytes: int = DEFAULT_ANNOTATED_MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.folder, self.every, self.quality = folder, max(1, every), quality
        self.max_files, self.max_bytes = max_files, max_bytes
        self.written = 0
        self.removed = 0  # old frames removed to stay within the caps
        self._files: OrderedDict[str, int] = OrderedDict()  # name -> bytes, oldest first
        self._bytes = 0

    @property
    def kept(self) -> tuple[int, int]:
        """(files, bytes) of annotated frames in the folder, as this sink accounts them."""
        return len(self._files), self._bytes

    def start(self, ctx: RunContext) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._scan()
            self._make_room(0)
        except OSError as exc:
            self._fail(self.folder, exc, lost=0)

    def on_result(self, result: FrameResult) -> None:
        if result.image is None or result.index % self.every or not self._ready():
            return
        is_still = result.index == 0 and Path(result.source).suffix.lower() in _STILLS
        prefix = f"{result.stream}-" if result.stream is not None else ""  # stream ids are file-name safe
        name = prefix + _stem(result.source) + ("" if is_still else f"-{result.index:06d}") + ".jpg"
        ok, buf = cv2.imencode(".jpg", annotate(result), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            log.warning("could not encode the annotated frame %s", name)
            return
        data = buf.tobytes()
        if len(data) > self.max_bytes:
            log.warning("annotated frame %s (%d bytes) is over output.annotated_max_bytes; not written", name,
                        len(data))
            return
        path = self.folder / name
        try:
            if (old := self._files.pop(name, None)) is not None:  # written again: it is the newest now
                self._bytes -= old
            self._make_room(len(data))
            self._write(path, data)
        except OSError as exc:
            self._fail(path, exc)
            return
        self._files[name] = len(data)
        self._bytes += len(data)
        self.written += 1
        self._ok()

    def close(self, summary: dict[str, Any]) -> None:
        summary.setdefault("annotated_frames", self.written)
        self._report(summary)

    def _write(self, path: Path, data: bytes) -> None:
        if self.error is not None:
            self.folder.mkdir(parents=True, exist_ok=True)  # it may have been removed
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)  # no half JPEG left behind
            raise
        os.close(fd)

    def _scan(self) -> None:
        """Frames already in the folder (an earlier run): oldest first, they count against the caps."""
        found = []
        for p in self.folder.glob("*.jpg"):
            with contextlib.suppress(OSError):
                st = p.stat()
                found.append((st.st_mtime_ns, p.name, st.st_size))
        self._files = OrderedDict((name, size) for _, name, size in sorted(found))
        self._bytes = sum(self._files.values())

    def _make_room(self, size: int) -> None:
        """Remove the oldest frames until one more of ``size`` bytes fits both caps."""
        extra = 1 if size else 0
        while self._files and (len(self._files) + extra > self.max_files or self._bytes + size > self.max_bytes):
            name, old = self._files.popitem(last=False)
            (self.folder / name).unlink(missing_ok=True)
            self._bytes -= old
            self.removed += 1


def file_sinks(output: OutputConfig) -> list[JsonlSink | AnnotatedFramesSink]:
    """The sinks ``output`` asks for: results.jsonl in ``output.dir``, and annotated frames unless turned off,
    each within the section's bounds (results rotation, annotated caps)."""
    if not output.dir:
        return []
    out = Path(output.dir)
    sinks: list[JsonlSink | AnnotatedFramesSink] = [
        JsonlSink(out / "results.jsonl", output.results_max_bytes, output.results_keep)]
    if output.annotate:
        sinks.append(AnnotatedFramesSink(out / "annotated", output.annotate_every,
                                         max_files=output.annotated_max_files, max_bytes=output.annotated_max_bytes))
    return sinks


def sink_errors(sinks: Iterable[object]) -> dict[str, str]:
    """Sink name -> why it is disabled now, for the file sinks among ``sinks`` that cannot write."""
    return {s.name: s.error for s in sinks if isinstance(s, _GuardedSink) and s.error}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all (tmp file + rename); no ``.tmp`` is left behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
