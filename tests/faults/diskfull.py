"""A real small disk that tests fill and free: a tmpfs of N bytes mounted on a folder (root only).

```python
with SmallDisk(tmp_path / "state", 2 << 20) as disk:   # mounted; skip with unavailable_reason() first
    ...                                               # the code under test writes to disk.path
    disk.fill()                                       # ballast up to ENOSPC: every further write fails
    disk.free()                                       # ballast removed: room again
# unmounted here (lazily, so a file still open under it cannot keep the mount)
```
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path
from types import TracebackType

BALLAST = ".ballast"
CHUNK = 64 * 1024


def unavailable_reason() -> str | None:
    """Why disk-full tests cannot run here (None when they can)."""
    if os.geteuid() != 0:
        return "disk-full tests mount a small tmpfs, which needs root"
    if not Path("/proc/filesystems").exists() or "tmpfs" not in Path("/proc/filesystems").read_text():
        return "this kernel has no tmpfs"
    return None


class SmallDisk:
    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path, self.size_bytes = path, size_bytes
        self.mounted = False

    def __enter__(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise OSError(f"cannot mount a tmpfs on {self.path}: {res.stderr.strip()}")
        self.mounted = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self.mounted = False

    @property
    def ballast(self) -> Path:
        return self.path / BALLAST

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bfree * st.f_frsize

    def fill(self) -> int:
        """Write ballast until the disk refuses (ENOSPC); returns the ballast's size. Idempotent."""
        zeros = b"\0" * CHUNK
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for block in (CHUNK, 4096, 1):  # big steps, then fill the last pages to the byte
                while True:
                    try:
                        if os.write(fd, zeros[:block]) < block:
                            break
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return self.ballast.stat().st_size

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ballast.unlink()
