"""Model package -> the ZIP artifact of a model component.

The ZIP is deterministic (sorted entries, fixed timestamps and modes), so the same package always
gives the same bytes and the same content-addressed S3 key: publishing twice uploads nothing new.
Greengrass unpacks it to ``{<component>:artifacts:decompressedPath}/model/``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..core.modelpkg import ModelPackage, load_package, sha256_file
from .recipes.info import ModelPackageInfo

_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_package(package_dir: Path, out_zip: Path, store: tuple[str, ...] = ()) -> Path:
    """Zip a folder (its files at the top of the archive), byte-for-byte reproducibly. Files whose names end
    with one of ``store`` (already compressed, e.g. ``.whl``) are stored as they are."""
    files = sorted(p for p in package_dir.rglob("*") if p.is_file())
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(out_zip.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            info = zipfile.ZipInfo(f.relative_to(package_dir).as_posix(), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if f.name.endswith(store) else zipfile.ZIP_DEFLATED
            with f.open("rb") as src, zf.open(info, "w") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    tmp.replace(out_zip)
    return out_zip


def package_info(pkg: ModelPackage, zip_path: Path, registry_arn: str | None = None,
                 registry_version: int | None = None) -> ModelPackageInfo:
    m = pkg.manifest
    return ModelPackageInfo(name=m.name, version=m.version, task=m.task, format=m.format, sha256=pkg.model_sha256,
                            zip_sha256=sha256_file(zip_path), registry_arn=registry_arn,
                            registry_version=registry_version)


def build_model_artifact(package_dir: Path, out_zip: Path) -> tuple[ModelPackage, ModelPackageInfo]:
    """Verify the package (every sha256), zip it, and describe it for the model component's recipe."""
    pkg = load_package(package_dir, verify=True)
    zip_package(pkg.root, out_zip)
    return pkg, package_info(pkg, out_zip)

