"""Registry artifact (tar.gz) -> a verified edgeinfer model package -> the model component's ZIP.

The tarball is checked against ``edgeinfer:sha256`` before it is opened. It may hold an edgeinfer
package (``manifest.yaml``, checked file by file) or one bare model file, which is imported with the
task from ``edgeinfer:task`` (a manifest is written for it). The package's ``version`` becomes the
model component version, so every event a device sends names the registry version it runs; the
original version stays in the manifest's ``source``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ...core.errors import ModelError
from ...core.modelpkg import load_package, sha256_file
from ...core.modelpkg.manifest import FORMAT_BY_SUFFIX
from ...core.modelpkg.package import MANIFEST_NAME, write_manifest
from ...core.modelpkg.signing import SIGNATURE_NAME, Signer, sign_package
from ...greengrass.artifacts import package_info, zip_package
from ...greengrass.recipes.info import ModelPackageInfo
from .archives import extract_tarball
from .errors import ArtifactError, RegistryError
from .registry import RegistryPackage

log = logging.getLogger(__name__)


def component_version(pkg: RegistryPackage) -> str:
    """One model component version per registry version: registry version N -> ``N.0.0``."""
    return f"{pkg.version}.0.0"


def check_tarball(tarball: Path, entry: RegistryPackage) -> None:
    expected = entry.meta("sha256")
    actual = sha256_file(tarball)
    if expected and actual != expected:
        raise ArtifactError(f"{entry.data_url} has sha256 {actual[:12]}…, the registry entry v{entry.version} "
                            f"says {expected[:12]}…", "the artifact was replaced after registration: register the "
                            "model again (new version) and reject this one")


def _package_root(unpacked: Path) -> Path | None:
    if (unpacked / MANIFEST_NAME).is_file():
        return unpacked
    subs = [p for p in unpacked.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / MANIFEST_NAME).is_file():
        return subs[0]
    return None


def _import_bare(unpacked: Path, entry: RegistryPackage, out: Path) -> Path:
    from ...core.modelpkg.importer import import_model

    models = [p for p in unpacked.rglob("*") if p.is_file() and p.suffix.lower() in FORMAT_BY_SUFFIX]
    if len(models) != 1:
        raise ArtifactError(f"{entry.data_url} holds no manifest.yaml and {len(models)} model files",
                            "register an edgeinfer package, or a tar.gz with exactly one .onnx/.tflite/.engine")
    task = entry.meta("task")
    if not task:
        raise RegistryError(f"registry entry v{entry.version} has no edgeinfer:task for its bare model file",
                            "add CustomerMetadataProperties edgeinfer:task (detection, classification, segmentation)")
    return import_model(models[0], task=task, out_dir=out, name=entry.meta("name") or entry.group,
                        source={"registry_arn": entry.arn})


def repackage(tarball: Path, entry: RegistryPackage, work: Path, signer: Signer | None = None
              ) -> tuple[Path, ModelPackageInfo]:
    """Check, unpack, verify, re-version, sign (with ``signer``) and zip. Returns (model.zip, what its recipe
    records). Re-versioning changes the manifest, so a signature made at registration no longer covers it:
    without ``signer`` it is dropped (a device that trusts keys refuses the unsigned package, as it should)."""
    check_tarball(tarball, entry)
    unpacked = extract_tarball(tarball, work / "unpacked")
    root = _package_root(unpacked) or _import_bare(unpacked, entry, work / "imported")
    try:
        pkg = load_package(root, verify=True)
    except ModelError as exc:
        raise ArtifactError(f"the package in {entry.data_url} fails verification: {exc.problem}",
                            "register a good package as a new version and reject this one") from exc
    expected = entry.meta("model_sha256")
    if expected and pkg.model_sha256 != expected:
        raise ArtifactError(f"the model file in {entry.data_url} has sha256 {pkg.model_sha256[:12]}…, the registry "
                            f"says {expected[:12]}…", "register the model again and reject this version")
    staged = work / "package"
    shutil.copytree(pkg.root, staged)
    version = component_version(entry)
    manifest = pkg.manifest.model_copy(update={"version": version, "source": {
        **pkg.manifest.source, "registry_arn": entry.arn, "registry_version": str(entry.version),
        "package_version": pkg.manifest.version}})
    write_manifest(manifest, staged)
    if signer is not None:
        sign_package(staged, signer)  # over the manifest as published: the version devices compare
    elif (staged / SIGNATURE_NAME).exists():
        (staged / SIGNATURE_NAME).unlink()
        log.warning("%s v%s: its registered signature does not cover the re-versioned manifest (%s); published "
                    "unsigned: pass --sign-key or --kms-key to sign it", entry.group, entry.version, version)
    final = load_package(staged, verify=True)
    zip_path = zip_package(staged, work / "model.zip")
    info = package_info(final, zip_path, registry_arn=entry.arn, registry_version=entry.version)
    return zip_path, info
