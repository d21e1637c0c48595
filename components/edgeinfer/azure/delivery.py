"""Model delivery: the twin's ``model: {name, version, uri, sha256[, size]}`` -> a verified local file.

* Resumable: bytes land in ``<file>.part``; after a dropped connection the next attempt asks for
  ``Range: bytes=<have>-`` and appends (a server that ignores ranges answers 200 and we start over).
* Bounded: ``Content-Length``, the twin's ``size`` and the module's limit are checked before and while
  reading, so a wrong or hostile URL cannot fill the disk.
* Verified: the sha256 of the whole file must equal the twin's before the file is renamed into place;
  the core then verifies the package's own per-file hashes, loads and warms the model up before it
  swaps. Any failure raises DeliveryError and leaves the running model alone.

Files live in ``<state>/azure/models/<sha256>/<name>``: a model already fetched is never fetched again,
and only the newest ``keep`` models stay on disk.
"""

from __future__ import annotations

import http.client
import logging
import re
import shutil
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .. import __version__
from ..core.modelpkg import sha256_file
from .errors import DeliveryError
from .modelref import ModelRef

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
Progress = Callable[[int, int | None], None]


def _noop(_done: int, _total: int | None) -> None:
    pass


def file_name(uri: str) -> str:
    name = PurePosixPath(urlsplit(uri).path).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "model.bin"


class _Retry(Exception):
    """A transient failure: try again, resuming from what is on disk."""


class ModelDownloader:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 30.0,
                 attempts: int = 5, keep: int = 3, ssl_context: ssl.SSLContext | None = None,
                 chunk_bytes: int = 1 << 20, stop: threading.Event | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.keep = keep
        self.chunk_bytes = chunk_bytes
        self._stop = stop or threading.Event()
        handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=ssl_context)]
        self._opener = urllib.request.build_opener(*handlers)

    def path_for(self, ref: ModelRef) -> Path:
        return self.root / ref.sha256 / file_name(ref.uri)

    def fetch(self, ref: ModelRef, progress: Progress = _noop) -> Path:
        """Download (or reuse) and verify ``ref``; return the local file. Raises DeliveryError."""
        final = self.path_for(ref)
        if final.is_file() and sha256_file(final) == ref.sha256:
            log.info("model %s already on disk at %s", ref.label(), final)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        limit = min(self.max_bytes, ref.size or self.max_bytes)
        last: str = ""
        for attempt in range(1, self.attempts + 1):
            try:
                self._download(ref, part, limit, progress)
                break
            except _Retry as exc:
                last = str(exc)
                log.warning("model %s: attempt %d/%d failed (%s); resuming", ref.label(), attempt, self.attempts, exc)
                if self._stop.wait(min(2.0 ** (attempt - 1) * 0.2, 5.0)):
                    raise DeliveryError(f"model {ref.label()}: download stopped",
                                        "the module is shutting down") from exc
        else:
            raise DeliveryError(f"model {ref.label()}: download failed {self.attempts} times, last: {last}",
                                "check the device's network and that model.uri is reachable; it is retried on "
                                "the next desired-properties update")
        self._verify(ref, part)
        part.replace(final)
        self._prune(keep_dir=final.parent)
        log.info("model %s downloaded and verified: %s", ref.label(), final)
        return final

    def _download(self, ref: ModelRef, part: Path, limit: int, progress: Progress) -> None:
        have = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": f"edgeinfer/{__version__}"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = self._opener.open(urllib.request.Request(ref.uri, headers=headers), timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing after what we have: complete, or garbage (the hash decides)
                return
            if exc.code in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            raise DeliveryError(f"model {ref.label()}: {ref.uri} answered HTTP {exc.code} {exc.reason}",
                                "fix model.uri in the desired properties (the old model keeps running)") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise DeliveryError(f"model {ref.label()}: TLS verification of {urlsplit(ref.uri).netloc} failed "
                                    f"({reason.verify_message})", "serve the model from a host with a trusted "
                                    "certificate, or add its CA to the image (SSL_CERT_FILE)") from exc
            raise _Retry(f"cannot reach {urlsplit(ref.uri).netloc}: {reason}") from exc
        with resp:
            if resp.status == 206 and not str(resp.headers.get("Content-Range", "")).startswith(f"bytes {have}-"):
                have = 0  # a range we did not ask for: start over
                resp_mode = "wb"
            elif resp.status == 206:
                resp_mode = "ab"
            else:
                have, resp_mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            if total is not None and total > limit:
                part.unlink(missing_ok=True)
                raise DeliveryError(f"model {ref.label()} is {total} bytes, over the {limit}-byte limit",
                                    "check model.uri and model.size, or raise EDGEINFER_MODEL_MAX_BYTES")
            self._copy(ref, resp, part, resp_mode, have, limit, total, progress)

    def _copy(self, ref: ModelRef, resp: object, part: Path, mode: str, have: int, limit: int,
              total: int | None, progress: Progress) -> None:
        done = have
        try:
            with part.open(mode) as out:
                while block := resp.read(self.chunk_bytes):  # type: ignore[attr-defined]
                    done += len(block)
                    if done > limit:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise DeliveryError(f"model {ref.label()}: more than {limit} bytes received",
                                            "check model.uri and model.size, or raise EDGEINFER_MODEL_MAX_BYTES")
                    out.write(block)
                    progress(done, total)
                    if self._stop.is_set():
                        raise _Retry("stopping")
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(f"connection lost after {done} bytes: {exc}") from exc
        if total is not None and done < total:
            raise _Retry(f"connection closed after {done} of {total} bytes")

    def _verify(self, ref: ModelRef, part: Path) -> None:
        digest = sha256_file(part)
        if digest != ref.sha256:
            size = part.stat().st_size
            part.unlink(missing_ok=True)
            raise DeliveryError(f"model {ref.label()}: sha256 mismatch (got {digest[:12]}…, twin says "
                                f"{ref.sha256[:12]}…, {size} bytes)", "the file at model.uri is not the one the "
                                "twin names: fix model.uri or model.sha256 (the old model keeps running)")

    def _prune(self, keep_dir: Path) -> None:
        dirs = sorted((d for d in self.root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
        for old in [d for d in dirs if d != keep_dir][max(0, self.keep - 1):]:
            shutil.rmtree(old, ignore_errors=True)
