"""Model package zips for delivery tests: the real BlazeFace package under another version."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import yaml


def package_zip(src: Path, version: str) -> bytes:
    """``src`` (a package folder) zipped with its manifest's version set to ``version``."""
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["version"] = version
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.yaml", yaml.safe_dump(manifest, sort_keys=False))
        for entry in manifest["files"]:
            zf.write(src / entry["path"], entry["path"])
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
