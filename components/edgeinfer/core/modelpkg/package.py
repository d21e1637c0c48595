"""Load a model package (folder or zip) and check its files against the manifest's sha256s."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import ModelError
from .manifest import Manifest

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.yaml"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ModelPackage:
    root: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.root / self.manifest.model_file

    @property
    def model_sha256(self) -> str:
        return self.manifest.file(self.manifest.model_file).sha256

    def verify_hashes(self) -> None:
        """Raise ModelError unless every listed file exists with the listed sha256 (and size)."""
        for entry in self.manifest.files:
            p = self.root / entry.path
            if not p.is_file():
                raise ModelError(f"package {self.root} lacks {entry.path}", "rebuild or re-download the package")
            if entry.size is not None and p.stat().st_size != entry.size:
                raise ModelError(f"{entry.path} is {p.stat().st_size} bytes, manifest says {entry.size}",
                                 "the file is truncated or replaced: re-download the package")
            digest = sha256_file(p)
            if digest != entry.sha256:
                raise ModelError(f"sha256 mismatch for {entry.path}: file {digest[:12]}…, manifest "
                                 f"{entry.sha256[:12]}…", "the model is corrupt or was swapped: re-download it")


def read_manifest(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read {path}: {exc}", "the package needs a valid manifest.yaml") from exc
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        from ..config import one_line

        raise ModelError(f"invalid manifest {path}: {one_line(exc)}", "fix manifest.yaml") from exc


def write_manifest(manifest: Manifest, folder: Path) -> Path:
    path = folder / MANIFEST_NAME
    data = manifest.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _extract_zip(zip_path: Path, cache: Path) -> Path:
    """Unpack once per zip content into ``cache/packages/<sha256>``; the rename makes it atomic."""
    digest = sha256_file(zip_path)
    target = cache / "packages" / digest
    if (target / MANIFEST_NAME).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for name in zf.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ModelError(f"{zip_path.name} holds an unsafe path {name!r}", "rebuild the package")
            zf.extractall(tmp)
        inner = tmp
        if not (tmp / MANIFEST_NAME).exists():  # zipped with a top-level folder
            subs = [p for p in tmp.iterdir() if p.is_dir()]
            if len(subs) == 1 and (subs[0] / MANIFEST_NAME).exists():
                inner = subs[0]
        if not (inner / MANIFEST_NAME).exists():
            raise ModelError(f"{zip_path.name} has no {MANIFEST_NAME}", "zip a package folder made by "
                             "`edgeinfer model import`")
        try:
            inner.rename(target)
        except OSError:  # another process won the race: theirs is as good as ours
            if not (target / MANIFEST_NAME).is_file():
                raise
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{zip_path.name} is not a valid zip ({exc})", "re-download the package") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_package(path: str | Path, cache: Path | None = None, verify: bool = True) -> ModelPackage:
    """Open a package folder or zip. With ``verify`` every file's sha256 is checked."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model package {p} does not exist", "pass a package folder, a .zip, or a model file")
    if p.is_file() and zipfile.is_zipfile(p):
        from ..config import cache_dir

        p = _extract_zip(p, cache or cache_dir())
    if p.is_file():
        raise ModelError(f"{p} is a file, not a model package", "use `edgeinfer model import` to make one, or "
                         "pass --task with a bare model file")
    manifest_path = p / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ModelError(f"{p} has no {MANIFEST_NAME}", "make a package with `edgeinfer model import FILE --task ...`")
    pkg = ModelPackage(p, read_manifest(manifest_path))
    if verify:
        pkg.verify_hashes()
    return pkg
