"""The capture queue: frames on disk, oldest first, within a size cap.

Each capture is ``<id>.jpg`` plus ``<id>.json`` (its metadata) in one folder; ids sort by time, so the listing
is the queue. The JSON is written last, atomically, and is the capture's commit mark: a JPEG without one (a
crash between the two writes) is removed at start. Adding a capture first evicts the oldest ones until it fits
``max_bytes`` and ``max_files`` (counted in ``evicted``), never the one being uploaded; one larger than the cap
is refused. The uploader takes captures oldest first and ``remove``s each once both objects are stored.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import private_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Capture:
    id: str
    jpg: Path
    meta: dict[str, Any]
    size: int


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class CaptureQueue:
    def __init__(self, folder: Path, max_bytes: int, max_files: int, clock: Callable[[], float] = time.time) -> None:
        self.folder, self.max_bytes, self.max_files = folder, max_bytes, max_files
        self._clock = clock
        self._lock = threading.Lock()
        self.evicted = 0
        self.refused = 0
        self._busy: str | None = None  # the capture being uploaded: never evicted
        folder.mkdir(parents=True, exist_ok=True)
        private_dir(folder)
        self._sizes: dict[str, int] = {}
        self._last_ms = 0  # ids' time part only grows: two captures in one millisecond keep their order
        self._recover()

    def _recover(self) -> None:
        for p in self.folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)
        for jpg in self.folder.glob("*.jpg"):
            meta = jpg.with_suffix(".json")
            if not meta.exists():
                jpg.unlink(missing_ok=True)  # never committed
                continue
            self._sizes[jpg.stem] = jpg.stat().st_size + meta.stat().st_size
        for meta in self.folder.glob("*.json"):
            if meta.stem not in self._sizes:
                meta.unlink(missing_ok=True)
        stamps = [int(cid[:14]) for cid in self._sizes if cid[:14].isdigit()]
        self._last_ms = max(stamps, default=0)
        if self._sizes:
            log.info("captures: %d frames (%d bytes) from an earlier run wait to be uploaded", len(self._sizes),
                     self.size_bytes)

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def __len__(self) -> int:
        return len(self._sizes)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._sizes)

    def add(self, jpeg: bytes, meta: dict[str, Any]) -> str | None:
        """Store one capture (evicting the oldest to make room); its id, or None when it can never fit."""
        with self._lock:
            self._last_ms = max(int(self._clock() * 1000), self._last_ms + 1)
            cid = f"{self._last_ms:014d}-{secrets.token_hex(4)}"
        doc = json.dumps({**meta, "id": cid}, separators=(",", ":"), sort_keys=True).encode()
        size = len(jpeg) + len(doc)
        with self._lock:
            if size > self.max_bytes:
                self.refused += 1
                return None
            for old in sorted(self._sizes):
                if sum(self._sizes.values()) + size <= self.max_bytes and len(self._sizes) < self.max_files:
                    break
                if old == self._busy:
                    continue
                self._drop(old)
                self.evicted += 1
            if sum(self._sizes.values()) + size > self.max_bytes or len(self._sizes) >= self.max_files:
                self.refused += 1  # only the capture in upload is left and it leaves no room
                return None
            try:
                _write(self.folder / f"{cid}.jpg", jpeg)
                _write(self.folder / f"{cid}.json", doc)
            except OSError as exc:
                (self.folder / f"{cid}.jpg").unlink(missing_ok=True)
                self.refused += 1
                log.warning("captures: cannot store a frame in %s: %s", self.folder, exc.strerror or exc)
                return None
            self._sizes[cid] = size
        return cid

    def _drop(self, cid: str) -> None:
        self._sizes.pop(cid, None)
        for suffix in (".json", ".jpg"):  # the commit mark first: a half-removed capture is not listed again
            (self.folder / f"{cid}{suffix}").unlink(missing_ok=True)

    def take(self, cid: str) -> Capture | None:
        """Mark ``cid`` in upload (protected from eviction) and read it; None when it is gone."""
        with self._lock:
            if cid not in self._sizes:
                return None
            self._busy = cid
            size = self._sizes[cid]
        try:
            meta = json.loads((self.folder / f"{cid}.json").read_bytes())
        except (OSError, ValueError):
            self.release(cid, remove=True)
            return None
        return Capture(cid, self.folder / f"{cid}.jpg", meta, size)

    def release(self, cid: str, remove: bool) -> None:
        """The upload of ``cid`` ended: ``remove`` once both objects are stored."""
        with self._lock:
            if self._busy == cid:
                self._busy = None
            if remove:
                self._drop(cid)
