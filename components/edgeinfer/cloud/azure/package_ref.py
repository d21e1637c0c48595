"""A local model package as the twin's model reference, refused when its optimize report rejected it.

``edgeinfer azure manifest --model-package PKG.zip --model-uri URL`` reads name and version from the package's
manifest and the sha256 from the file itself (what the device checks after downloading URL), so the manifest
cannot name bytes other than those checked here.
"""

from __future__ import annotations

from pathlib import Path

from ...azure.modelref import ModelRef
from ...core.errors import ModelError
from ...core.modelpkg import load_package, sha256_file
from ...core.optimize.lineage import check_publishable
from .errors import ManifestError


def package_ref(path: Path, uri: str | None, force: bool = False, name: str | None = None,
                version: str | None = None) -> ModelRef:
    if not path.is_file():
        raise ModelError(f"--model-package {path} is not a file", "pass the package .zip you upload to --model-uri")
    if not uri:
        raise ManifestError("--model-package needs --model-uri", "pass the https URL the package .zip is served at")
    manifest = load_package(path, verify=True).manifest
    check_publishable(manifest, force)
    return ModelRef(name=name or manifest.name, version=version or manifest.version, uri=uri,
                    sha256=sha256_file(path))
