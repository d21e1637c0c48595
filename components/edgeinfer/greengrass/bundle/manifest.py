"""What a runtime bundle holds (``manifest.json``), and reading it back from a bundle ZIP.

A bundle ZIP unpacks (Greengrass: ``{artifacts:decompressedPath}/edgeinfer-runtime-<platform>/``) to the
wheels, ``requirements.txt`` (each wheel pinned with its sha256) and ``manifest.json``. Publishing reads
the manifest to check that each ZIP is the bundle of the platform and edgeinfer version it is uploaded for.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.modelpkg import sha256_file
from ..recipes.platforms import Platform, runtime_artifact_name
from .errors import BundleError

MANIFEST_NAME = "manifest.json"
REQUIREMENTS_NAME = "requirements.txt"
FIX_REBUILD = "build it with: edgeinfer greengrass bundle --platform {key}"


class BundledWheel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    name: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int


class BundleManifest(BaseModel):
    """``manifest.json`` of a runtime bundle. The Install lifecycle reads ``python``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    platform: str
    python: str
    glibc: str
    extras: list[str]
    edgeinfer_version: str
    wheels: list[BundledWheel]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"


def read_manifest(bundle_zip: Path) -> BundleManifest:
    """The manifest inside a bundle ZIP; BundleError when the file is not a runtime bundle."""
    try:
        with zipfile.ZipFile(bundle_zip) as zf:
            return BundleManifest.model_validate_json(zf.read(MANIFEST_NAME))
    except (OSError, zipfile.BadZipFile, KeyError, ValidationError) as exc:
        raise BundleError(f"{bundle_zip} is not an edgeinfer runtime bundle ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})",
                          "build it with: edgeinfer greengrass bundle") from exc


def runtime_digests(runtime_dir: Path, platforms: tuple[Platform, ...], edgeinfer_version: str) -> dict[str, str]:
    """platform key -> sha256 of ``runtime_dir/edgeinfer-runtime-<key>.zip``, after checking that each is the
    bundle of that platform holding that edgeinfer version (the digests make the artifact keys)."""
    digests: dict[str, str] = {}
    for p in platforms:
        path = runtime_dir / runtime_artifact_name(p)
        if not path.is_file():
            raise BundleError(f"{path} is missing", f"{FIX_REBUILD.format(key=p.key)} --out {runtime_dir}, or "
                              "limit --platform to the bundles you have")
        m = read_manifest(path)
        if m.platform != p.key:
            raise BundleError(f"{path.name} holds the bundle for {m.platform}, not {p.key}",
                              FIX_REBUILD.format(key=p.key))
        if m.edgeinfer_version != edgeinfer_version:
            raise BundleError(f"{path.name} holds edgeinfer {m.edgeinfer_version}, the component installs "
                              f"{edgeinfer_version}", "bundle the same edgeinfer version you publish")
        digests[p.key] = sha256_file(path)
    return digests
