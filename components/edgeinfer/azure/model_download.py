"""Model delivery: the twin's ``model: {name, version, uri, sha256[, size]}`` -> a verified local file.

* Resumable: bytes land in ``<file>.part``; after a dropped connection the next attempt asks for
  ``Range: bytes=<have>-`` and appends (a server that ignores ranges answers 200 and we start over).
* Bounded: ``Content-Length``, the twin's ``size`` and the module's limit are checked before and while
  reading, so a wrong or hostile URL cannot fill the disk.
* Space-checked: before any byte is written the size still to come (twin ``size`` or ``Content-Length``)
  plus a margin must fit in the free space of the models folder (unretained old downloads are pruned
  first to make room). A write error (ENOSPC) removes the ``.part`` and fails the delivery at once.
* Guarded: model.uri must be https:// (http:// only with ``remote.model_http``) on a host of
  ``remote.model_hosts`` (the local settings); the connection goes to the address that was checked, never a
  link-local or metadata one; redirects (S3 presigned URLs answer 307) are re-checked hop by hop, at most 5.
  What reaches the twin says "failed" or "blocked" and names the host, nothing more (a closed port, a 404 and a
  TLS refusal read the same): the detail is in the module log. See core/netguard.py and core/netopener.py.
* Verified: the sha256 of the whole file must equal the twin's before the file is renamed into place;
  the core then verifies the package's own per-file hashes, loads and warms the model up before it
  swaps. Any failure raises DeliveryError and leaves the running model alone.

Files live in ``<state>/azure/models/<sha256>/<name>``: a model already fetched is never fetched again.
What stays on disk: every model the runtime *retains* (the active one and the last-good one: see
``retain``; the set survives restarts in ``retained.json``), anything passed as ``keep`` to ``fetch`` or
``prune``, and at most the newest ``keep`` other downloads (rejected or superseded ones).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import os
import re
import shutil
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from .. import __version__
from ..core.modelpkg import sha256_file
from ..core.netguard import MAX_REDIRECTS, Blocked, Outbound, Resolver
from ..core.netopener import build_opener
from ..core.paths import private_dir
from ..core.progress import Progress, no_progress
from ..core.redact import redact
from ..core.remoteconfig import RemotePolicy
from .errors import DeliveryError
from .modelref import ModelRef

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_KEEP = 3  # unretained downloads kept besides the retained ones (newest first)
FREE_MARGIN_RATIO = 0.10  # a download needs its size + 10 % + 16 MiB free before the first byte is written
FREE_MARGIN_BYTES = 16 * 1024**2
RETAINED_FILE = "retained.json"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def file_name(uri: str) -> str:
    name = PurePosixPath(urlsplit(uri).path).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "model.bin"


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB"


def _host(uri: str) -> str:
    try:
        return urlsplit(uri).hostname or "the model host"
    except ValueError:
        return "the model host"


def model_outbound(policy: RemotePolicy, resolve: Resolver = socket.getaddrinfo) -> Outbound:
    """Where model downloads may go: ``remote.model_hosts``, https (and http with ``remote.model_http``)."""
    return Outbound(hosts=tuple(policy.model_hosts),
                    schemes=frozenset({"https", "http"} if policy.model_http else {"https"}),
                    setting="remote.model_hosts", resolve=resolve,
                    scheme_hint="serve the model over https://, or set remote.model_http: true in the device's "
                                "local settings")


class _Retry(Exception):
    """A transient failure: try again, resuming from what is on disk."""


class ModelDownloader:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 30.0,
                 attempts: int = 5, keep: int = DEFAULT_KEEP, ssl_context: ssl.SSLContext | None = None,
                 chunk_bytes: int = 1 << 20, stop: threading.Event | None = None,
                 free_margin_bytes: int = FREE_MARGIN_BYTES, free_margin_ratio: float = FREE_MARGIN_RATIO,
                 policy: RemotePolicy | None = None, resolve: Resolver = socket.getaddrinfo) -> None:
        """``policy``: the local settings' ``remote:`` section (``model_hosts``, ``model_http``); ``resolve``:
        the name resolver (``socket.getaddrinfo``'s signature)."""
        self.root = root
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.keep = max(1, keep)
        self.chunk_bytes = chunk_bytes
        self.free_margin_bytes = free_margin_bytes
        self.free_margin_ratio = free_margin_ratio
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._retained: frozenset[str] = self._load_retained()
        self._outbound = model_outbound(policy or RemotePolicy(), resolve)
        self._opener = build_opener(self._outbound, ssl_context, max_redirects=MAX_REDIRECTS)

    def path_for(self, ref: ModelRef) -> Path:
        return self.root / ref.sha256 / file_name(ref.uri)

    # -- what stays on disk ------------------------------------------------------------------------
    @property
    def retained(self) -> frozenset[Path]:
        """The model folders that ``retain`` protects (``<root>/<sha256>``)."""
        return frozenset(self.root / name for name in self._retained)

    def retain(self, paths: Iterable[Path]) -> list[Path]:
        """Protect exactly these models (files or their folders under ``root``; others are ignored) from
        pruning, replacing the previous set, persist the set, then prune. Returns the folders removed.

        The runtime calls it after a swap succeeded with ``{new active, previous active (last-good)}``."""
        names = frozenset(n for p in paths if (n := self._dir_name(p)) is not None)
        with self._lock:
            self._retained = names
            self._save_retained(names)
        return self.prune()

    def prune(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Remove downloads that are neither retained nor in ``keep``, beyond the newest ``self.keep``.
        Returns the folders removed."""
        return self._prune(self._protected(keep), self.keep)

    def space_needed(self, nbytes: int) -> int:
        """Free bytes a download of ``nbytes`` needs before it starts: the size plus the margin."""
        return nbytes + int(nbytes * self.free_margin_ratio) + self.free_margin_bytes

    # -- fetching ----------------------------------------------------------------------------------
    def fetch(self, ref: ModelRef, progress: Progress = no_progress, keep: Iterable[Path] = ()) -> Path:
        """Download (or reuse) and verify ``ref``; return the local file. Raises DeliveryError.

        ``keep``: models that must survive this call (besides the retained ones) whatever happens; pruning
        after a download, or to make room for it, never touches them."""
        protect = self._protected(keep)
        final = self.path_for(ref)
        if final.is_file() and sha256_file(final) == ref.sha256:
            log.info("model %s already on disk at %s", ref.label(), final)
            self._touch(final.parent)
            return final
        try:
            private_dir(self.root)  # 0700: downloaded models (perhaps licensed weights) are the device's alone
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"model {ref.label()}: cannot create {final.parent}: {exc.strerror or exc}",
                                f"make {self.root} writable and free space there (the old model keeps running)"
                                ) from exc
        part = final.with_name(final.name + ".part")
        limit = min(self.max_bytes, ref.size or self.max_bytes)
        protect = protect | {final.parent.name}
        last: str = ""
        for attempt in range(1, self.attempts + 1):
            try:
                self._download(ref, part, limit, progress, protect)
                break
            except _Retry as exc:
                last = str(exc)
                log.warning("model %s: attempt %d/%d failed (%s); resuming", ref.label(), attempt, self.attempts,
                            redact(last))
                if self._stop.wait(min(2.0 ** (attempt - 1) * 0.2, 5.0)):
                    raise DeliveryError(f"model {ref.label()}: download stopped",
                                        "the module is shutting down") from exc
        else:
            log.warning("model %s: download from %s failed %d times, last: %s", ref.label(), _host(ref.uri),
                        self.attempts, redact(last))
            raise self._failed(ref)
        self._verify(ref, part)
        part.replace(final)
        self._touch(final.parent)
        self._prune(protect - {final.parent.name}, self.keep, first=final.parent.name)
        log.info("model %s downloaded and verified: %s", ref.label(), final)
        return final

    def _download(self, ref: ModelRef, part: Path, limit: int, progress: Progress, protect: frozenset[str]) -> None:
        have = part.stat().st_size if part.is_file() else 0
        if ref.size is not None and ref.size > have:
            self._ensure_space(ref, part, ref.size - have, protect)
        headers = {"User-Agent": f"edgeinfer/{__version__}"}
        if have:
            headers["Range"] = f"bytes={have}-"
        resp = self._open(ref, headers, have)
        if resp is None:  # nothing after what we have: complete, or garbage (the hash decides)
            return
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
            if total is not None:
                if resp_mode == "wb":
                    part.unlink(missing_ok=True)  # starting over: what is there frees up
                self._ensure_space(ref, part, total - have, protect)
            self._copy(ref, resp, part, resp_mode, have, limit, total, progress)

    def _open(self, ref: ModelRef, headers: dict[str, str], have: int) -> http.client.HTTPResponse | None:
        """The response for ``ref.uri`` (redirects followed, every hop checked); None for a 416 on a resume.
        Raises _Retry (transient) or DeliveryError (blocked, or a permanent failure: reported as "failed")."""
        try:
            self._outbound.check_url(ref.uri)
            resp: http.client.HTTPResponse = self._opener.open(urllib.request.Request(ref.uri, headers=headers),
                                                               timeout=self.timeout_s)
            return resp
        except Blocked as exc:
            log.warning("model %s: download from %s blocked: %s", ref.label(), redact(ref.uri), exc)
            raise DeliveryError(f"model {ref.label()}: download from {_host(ref.uri)} blocked: {exc.problem}",
                                exc.fix) from exc
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and have:
                return None
            if exc.code in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
            log.warning("model %s: %s answered HTTP %d %s", ref.label(), redact(exc.geturl() or ref.uri), exc.code,
                        redact(str(exc.reason))[:200])
            raise self._failed(ref) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                log.warning("model %s: TLS verification of %s failed (%s): serve the model from a host with a "
                            "trusted certificate, or add its CA to the image (SSL_CERT_FILE)", ref.label(),
                            _host(ref.uri), reason.verify_message)
                raise self._failed(ref) from exc
            raise _Retry(f"cannot reach {_host(ref.uri)}: {redact(str(reason))}") from exc

    @staticmethod
    def _failed(ref: ModelRef) -> DeliveryError:
        """The one text every failure to get the file reports: it must not tell a closed port from a 404 or a TLS
        refusal (the twin's writer could map the device's network); the module log says which."""
        return DeliveryError(f"model {ref.label()}: download from {_host(ref.uri)} failed (see the module log)",
                             "check model.uri and that the device can reach it (the old model keeps running); it "
                             "is retried on the next desired-properties update")

    def _copy(self, ref: ModelRef, resp: http.client.HTTPResponse, part: Path, mode: str, have: int, limit: int,
              total: int | None, progress: Progress) -> None:
        done = have
        with self._writing(ref, part, done):
            out = part.open(mode)
        try:
            while True:
                try:
                    block = resp.read(self.chunk_bytes)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"connection lost after {done} bytes: {exc}") from exc
                if not block:
                    break
                done += len(block)
                if done > limit:
                    out.close()
                    part.unlink(missing_ok=True)
                    raise DeliveryError(f"model {ref.label()}: more than {limit} bytes received",
                                        "check model.uri and model.size, or raise EDGEINFER_MODEL_MAX_BYTES")
                with self._writing(ref, part, done - len(block)):
                    out.write(block)
                    out.flush()
                progress(f"downloading {ref.name} {ref.version}", done, total)
                if self._stop.is_set():
                    raise _Retry("stopping")
            with self._writing(ref, part, done):
                os.fsync(out.fileno())  # delayed allocation reports a full disk here
                out.close()
        finally:
            if not out.closed:
                try:
                    out.close()
                except OSError:
                    part.unlink(missing_ok=True)
        if total is not None and done < total:
            raise _Retry(f"connection closed after {done} of {total} bytes")

    @contextlib.contextmanager
    def _writing(self, ref: ModelRef, part: Path, done: int) -> Iterator[None]:
        """Writes on ``part``: a failure (disk full above all) removes the part and fails the delivery."""
        try:
            yield
        except OSError as exc:
            part.unlink(missing_ok=True)
            free = self._free(part.parent)
            what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            raise DeliveryError(f"model {ref.label()}: {what} writing {part} after {done} bytes "
                                f"({_mib(free)} free); the partial file was removed",
                                f"free space under {self.root} (the old model keeps running); the download "
                                "starts over on the next desired-properties update") from exc

    def _ensure_space(self, ref: ModelRef, part: Path, need: int, protect: frozenset[str]) -> None:
        """Refuse, before anything is written, a download that would not fit with the margin."""
        want = self.space_needed(need)
        free = self._free(part.parent)
        if want > free and self._prune(protect, 0, exclude=part.parent.name):
            free = self._free(part.parent)  # old, unretained downloads made room
        if want > free:
            part.unlink(missing_ok=True)
            raise DeliveryError(f"model {ref.label()}: needs {_mib(want)} free ({need} bytes + margin), only "
                                f"{_mib(free)} free under {self.root}; nothing was written",
                                "free space on the device (the old model keeps running); it is retried on the "
                                "next desired-properties update")

    @staticmethod
    def _free(path: Path) -> int:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return 0

    def _verify(self, ref: ModelRef, part: Path) -> None:
        digest = sha256_file(part)
        if digest != ref.sha256:
            size = part.stat().st_size
            part.unlink(missing_ok=True)
            raise DeliveryError(f"model {ref.label()}: sha256 mismatch (got {digest[:12]}…, twin says "
                                f"{ref.sha256[:12]}…, {size} bytes)", "the file at model.uri is not the one the "
                                "twin names: fix model.uri or model.sha256 (the old model keeps running)")

    # -- pruning -----------------------------------------------------------------------------------
    def _dir_name(self, path: Path) -> str | None:
        """The ``<sha256>`` folder name a path under ``root`` belongs to, or None."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(self.root))
        except ValueError:
            return None
        return rel.parts[0] if rel.parts and not rel.parts[0].startswith(".") else None

    def _protected(self, keep: Iterable[Path]) -> frozenset[str]:
        return self._retained | {n for p in keep if (n := self._dir_name(p)) is not None}

    def _prune(self, protect: frozenset[str], others: int, first: str | None = None,
               exclude: str | None = None) -> list[Path]:
        """Keep ``protect`` and the newest ``others`` of the rest (``first`` counts as the newest; ``exclude``
        is never touched nor counted); remove the rest."""
        try:
            dirs = [d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")]
        except OSError:
            return []
        candidates = [d for d in dirs if d.name not in protect and d.name != exclude]
        candidates.sort(key=lambda d: (d.name != first, -self._mtime(d)))
        removed = candidates[others:]
        for old in removed:
            log.info("pruning model download %s", old)
            shutil.rmtree(old, ignore_errors=True)
        return removed

    @staticmethod
    def _mtime(d: Path) -> float:
        try:
            return d.stat().st_mtime
        except OSError:
            return 0.0

    @staticmethod
    def _touch(d: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(d)

    def _load_retained(self) -> frozenset[str]:
        try:
            names = json.loads((self.root / RETAINED_FILE).read_text())
        except (OSError, ValueError):
            return frozenset()
        return frozenset(n for n in names if isinstance(n, str) and re.fullmatch(r"[0-9a-f]{64}", n)) \
            if isinstance(names, list) else frozenset()

    def _save_retained(self, names: frozenset[str]) -> None:
        path = self.root / RETAINED_FILE
        tmp = path.with_name(f".{RETAINED_FILE}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(sorted(names)))
            tmp.replace(path)
        except OSError as exc:  # kept in memory: a restart before the next retain may prune more than it should
            tmp.unlink(missing_ok=True)
            log.warning("could not save the retained models to %s: %s", path, exc)
