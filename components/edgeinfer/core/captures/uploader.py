"""Uploads the capture queue, oldest first, whenever the store can be reached.

For each capture, two objects under the store's prefix: ``<prefix><device>/<YYYY>/<MM>/<DD>/<id>.jpg`` and, next
to it, ``<id>.manifest`` (its Ground Truth manifest line, ``source-ref`` naming the JPEG). The capture leaves the
queue only once both are stored, so a connection lost half-way sends it again later, to the same keys (an
overwrite with the same bytes, never a second object); a capture that was stored is never sent again. A failed
upload stops the pass (counted, ``last_error``); the next pass is ``upload_interval_s`` later or at ``wake()``.

Stores (S3, the Azure Blob Storage module) are found by entry point under ``edgeinfer.capture_stores``
(``edgeinfer.hybrid``), or injected.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .. import plugins
from ..errors import EdgeInferError
from ..netguard import Outbound
from ..redact import redact
from .manifest import manifest_line
from .queue import CaptureQueue

log = logging.getLogger(__name__)
STORES = "edgeinfer.capture_stores"


class StoreUnavailable(EdgeInferError):
    """The store could not take an object now (offline, refused, timed out): try again later."""


class CaptureStore(Protocol):
    name: str

    def put(self, key: str, data: bytes, content_type: str, timeout_s: float) -> None:
        """Store ``data`` at ``key``; raises StoreUnavailable."""
        ...

    def uri(self, key: str) -> str:
        """How a labelling job names the object at ``key`` (s3://bucket/key, the blob's URL)."""
        ...

    def close(self) -> None: ...


StoreFactory = Callable[[Any, Outbound], CaptureStore]


def store_for(settings: Any, outbound: Outbound, factories: Mapping[str, StoreFactory] | None = None
              ) -> CaptureStore:
    kind = settings.type
    if factories is not None and kind in factories:
        return factories[kind](settings, outbound)
    cls = plugins.load_configured(STORES, kind, "capture store")
    return cls.from_config(settings, outbound)


def object_key(prefix: str, meta: dict[str, Any], cid: str) -> str:
    day = dt.datetime.fromtimestamp(float(meta.get("time") or 0), dt.timezone.utc)
    device = str(meta.get("device") or "unknown").replace("/", "_")
    return f"{prefix}{device}/{day:%Y/%m/%d}/{cid}"


class Uploader:
    def __init__(self, queue: CaptureQueue, store: CaptureStore, prefix: str, interval_s: float,
                 timeout_s: float) -> None:
        self.queue, self.store, self.prefix = queue, store, prefix
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.uploaded = 0
        self.failed = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgeinfer-captures", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.store.close()

    def wait(self, predicate: Callable[[Uploader], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked after every upload and every failed pass)."""
        with self._progress:
            return self._progress.wait_for(lambda: predicate(self), timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.upload_pass()
            except Exception:  # the uploader must outlive any one capture
                log.exception("captures: upload pass failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def upload_pass(self) -> int:
        """Upload what is queued, oldest first, until done or a failure; the captures uploaded."""
        done = 0
        for cid in self.queue.ids():
            if self._stop.is_set():
                break
            cap = self.queue.take(cid)
            if cap is None:
                continue  # evicted meanwhile
            key = object_key(self.prefix, cap.meta, cid)
            ok = False
            try:
                self.store.put(f"{key}.jpg", cap.jpg.read_bytes(), "image/jpeg", self.timeout_s)
                line = manifest_line(self.store.uri(f"{key}.jpg"), cap.meta)
                self.store.put(f"{key}.manifest", line, "application/json", self.timeout_s)
                ok = True
            except (StoreUnavailable, OSError) as exc:
                self.failed += 1
                self.last_error = redact(exc.problem if isinstance(exc, EdgeInferError) else str(exc))
                log.info("captures: upload to %s paused: %s (%d waiting)", self.store.name, self.last_error,
                         len(self.queue))
            finally:
                self.queue.release(cid, remove=ok)
            with self._progress:
                if ok:
                    self.uploaded += 1
                    done += 1
                self._progress.notify_all()
            if not ok:
                break
        return done
