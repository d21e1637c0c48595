"""One process per outbox: an exclusive, non-blocking lock file (released by the OS on kill -9)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from ..errors import TelemetryError

try:  # POSIX; elsewhere the lock is skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def take_lock(path: Path) -> IO[str]:
    """Hold ``path`` exclusively until the returned handle is closed."""
    handle = path.open("a+")
    if fcntl is None:  # pragma: no cover
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise TelemetryError(f"another edgeinfer process is using the telemetry outbox in {path.parent}",
                             "stop it, or give this one its own --state-dir / EDGEINFER_STATE_DIR") from exc
    return handle
