"""Directories the device writes to (output.dir, state_dir): created and proven writable up front.

A directory under a regular file, on a read-only mount, without permission or on a full disk is a
one-line ``ConfigError`` naming the setting, the path and the cause, before any pipeline starts:

```python
out = ensure_dir(cfg.output.dir, "output.dir")          # creates it (parents too) or raises ConfigError
if problem := writable_problem(cfg.resolved_state_dir(), "state_dir"):   # validation: creates nothing
    reject(problem)
```
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

from .errors import ConfigError

PROBE_PREFIX = ".edgeinfer-probe-"

_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}


class DiskFullError(ConfigError):
    """The directory is fine but its file system is full: a fault that may clear, not a wrong setting."""


def ensure_dir(path: str | Path, what: str, full_ok: bool = False) -> Path:
    """Create ``path`` (parents too) and prove it writable with a probe file; the path, or ConfigError.

    ``full_ok``: a full file system is not an error (what writes there copes and recovers when space
    returns: the outbox drops and counts, the file sinks pause)."""
    p = Path(path).expanduser()
    if err := _blocked(p, what):
        raise err
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err = _os_error(p, what, exc)
        if not (full_ok and isinstance(err, DiskFullError)):
            raise err from exc
    if (err := _probe(p, what)) and not (full_ok and isinstance(err, DiskFullError)):
        raise err
    return p


def writable_problem(path: str | Path, what: str = "directory", full_ok: bool = False) -> str | None:
    """Why ``path`` could not be used as a writable directory (one line: problem -> fix), or None.

    Creates nothing that stays: an existing directory gets a probe file written and removed; for a
    missing one the nearest existing parent must be a writable directory with space left.
    """
    p = Path(path).expanduser()
    if err := _blocked(p, what):
        return str(err)
    if p.is_dir():
        err = _probe(p, what)
        return str(err) if err and not (full_ok and isinstance(err, DiskFullError)) else None
    parent = _nearest_existing(p)
    if parent is None:
        return None
    try:
        vfs = os.statvfs(parent)
    except OSError as exc:
        return str(_os_error(p, what, exc))
    if vfs.f_flag & os.ST_RDONLY:
        return str(_os_error(p, what, OSError(errno.EROFS, os.strerror(errno.EROFS))))
    if not os.access(parent, os.W_OK | os.X_OK):
        return str(_os_error(p, what, OSError(errno.EACCES, os.strerror(errno.EACCES))))
    free = vfs.f_bfree if os.geteuid() == 0 else vfs.f_bavail  # root may use the reserved blocks
    if vfs.f_blocks and free == 0 and not full_ok:
        return str(_os_error(p, what, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    return None


def _nearest_existing(p: Path) -> Path | None:
    for candidate in (p, *p.parents):
        if os.path.lexists(candidate):
            return candidate
    return None


def _blocked(p: Path, what: str) -> ConfigError | None:
    """``p`` is a file, or a regular file (or a link to one) sits where one of its parents should be."""
    found = _nearest_existing(p.absolute())
    if found is None or found.is_dir():
        return None
    if found == p.absolute():
        return ConfigError(f"{what} {p} is a regular file, not a directory",
                           f"point {what} at a directory, or move {p} away")
    return ConfigError(f"{what} {p} is under a regular file {found}",
                       f"point {what} at a directory, or move {found} away")


def _probe(p: Path, what: str) -> ConfigError | None:
    """Write one byte to a new file in ``p`` and sync it (a full disk fails here), then remove it."""
    probe = p / f"{PROBE_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return _os_error(p, what, exc)
    try:
        os.write(fd, b"\0")
        os.fsync(fd)
    except OSError as exc:
        return _os_error(p, what, exc)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):  # removing needs no space; a vanished probe is no problem
            probe.unlink()
    return None


def _os_error(p: Path, what: str, exc: OSError) -> ConfigError:
    if exc.errno == errno.ENOTDIR and (blocked := _blocked(p, what)) is not None:
        return blocked
    cause = _CAUSES.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        fix = f"give the user running edgeinfer write access to {p}, or point {what} at another directory"
    elif exc.errno == errno.EROFS:
        fix = f"point {what} at a writable file system (for example under /var/lib)"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{what} {p} is not writable: {cause}",
                             f"free space on the file system that holds {p}, or point {what} at another one")
    else:
        fix = f"point {what} at a writable directory"
    return ConfigError(f"{what} {p} is not writable: {cause}", fix)


def private_file(path: Path) -> None:
    """Create ``path`` (empty) as 0600 if missing, or tighten it to 0600: whatever the umask says."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def private_dir(path: Path) -> Path:
    """``path`` created as 0700 (parents as the umask says), or tightened to 0700 when it is ours."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path
