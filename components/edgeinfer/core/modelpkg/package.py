"""Load a model package (folder or zip) and check its files against the manifest's sha256s."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import ModelError
from .manifest import Manifest
from .unzip import MANIFEST_NAME, MAX_UNPACKED_BYTES, ZipPlan, extract_plan, plan_zip

log = logging.getLogger(__name__)

KEEP_UNPACKED = 4  # unpacked zips kept in the cache (most recently used first), besides the one being loaded
UNPACK_GRACE_S = 300.0  # a folder used this recently is never pruned: another process may be loading it
STALE_TMP_S = 3600.0  # an unpack or prune leftover this old is removed


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
        text = path.read_text()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}", "the package needs a valid manifest.yaml") from exc
    return parse_manifest(text, str(path))


def parse_manifest(text: str, where: str) -> Manifest:
    """A manifest from its YAML text; ``where`` names it in errors. Raises ModelError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"cannot read {where}: {exc}", "the package needs a valid manifest.yaml") from exc
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        from ..config import one_line

        raise ModelError(f"invalid manifest {where}: {one_line(exc)}", "fix manifest.yaml") from exc


def write_manifest(manifest: Manifest, folder: Path) -> Path:
    path = folder / MANIFEST_NAME
    data = manifest.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _check_against_manifest(zip_name: str, plan: ZipPlan, manifest: Manifest) -> None:
    """Every file the manifest lists is in the zip with the listed size: a broken package is refused unpacked."""
    for entry in manifest.files:
        info = plan.member(entry.path)
        if info is None or info.is_dir():
            raise ModelError(f"{zip_name} lacks {entry.path}, which its manifest lists", "rebuild or re-download "
                             "the package")
        if entry.size is not None and info.file_size != entry.size:
            raise ModelError(f"{zip_name}: {entry.path} is {info.file_size} bytes, its manifest says {entry.size}",
                             "the package is truncated or was changed: re-download it")


def _extract_zip(zip_path: Path, cache: Path, keep_unpacked: int = KEEP_UNPACKED,
                 max_bytes: int = MAX_UNPACKED_BYTES) -> Path:
    """Unpack once per zip content into ``cache/packages/<sha256>``; the rename makes it atomic.

    The zip's directory and manifest are checked before anything is written (see ``unzip.plan_zip``); then
    the unpack cache is pruned to the ``keep_unpacked`` most recently used packages (never this one)."""
    digest = sha256_file(zip_path)
    target = cache / "packages" / digest
    if (target / MANIFEST_NAME).is_file():
        with contextlib.suppress(OSError):
            os.utime(target)  # most recently used
        prune_unpacked(target.parent, keep_unpacked, protect=(target,))
        return target
    try:
        with zipfile.ZipFile(zip_path) as zf:
            plan = plan_zip(zf, zip_path.name, max_bytes=max_bytes)
            manifest = parse_manifest(plan.manifest_text, f"{zip_path.name}:{plan.prefix}{MANIFEST_NAME}")
            _check_against_manifest(zip_path.name, plan, manifest)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
            try:
                extract_plan(zf, plan, tmp, zip_path.name, max_bytes=max_bytes)
                try:
                    tmp.rename(target)
                except OSError:  # another process won the race: theirs is as good as ours
                    if not (target / MANIFEST_NAME).is_file():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{zip_path.name} is not a valid zip ({exc})", "re-download the package") from exc
    except OSError as exc:
        raise ModelError(f"cannot unpack {zip_path.name} into {target.parent}: {exc.strerror or exc}",
                         f"free space under {target.parent} or make it writable") from exc
    prune_unpacked(target.parent, keep_unpacked, protect=(target,))
    return target


def prune_unpacked(packages: Path, keep: int = KEEP_UNPACKED, protect: Iterable[Path] = (),
                   min_age_s: float = UNPACK_GRACE_S) -> list[Path]:
    """Bound the unpack cache: keep ``protect``, the ``keep`` most recently used folders, and any used in the
    last ``min_age_s`` seconds (another process may be loading it); remove the rest, and unpack leftovers
    older than an hour. Returns the folders removed. Errors are logged, never raised."""
    now = time.time()
    kept = {p.name for p in protect}
    try:
        entries = [(d, d.stat().st_mtime) for d in packages.iterdir() if d.is_dir()]
    except OSError as exc:
        log.warning("cannot prune the unpacked packages in %s: %s", packages, exc)
        return []
    stale = [d for d, mtime in entries if d.name.startswith(".") and now - mtime > STALE_TMP_S]
    folders = [(d, m) for d, m in entries if not d.name.startswith(".")]
    others = sorted(((d, m) for d, m in folders if d.name not in kept), key=lambda e: e[1], reverse=True)
    room = max(0, keep - (len(folders) - len(others)))  # the protected ones count towards ``keep``
    old = [d for d, mtime in others[room:] if now - mtime >= min_age_s]
    removed: list[Path] = []
    for d in old + stale:
        try:  # renamed first: a reader never sees a half-removed package that still has its manifest
            gone = d if d.name.startswith(".") else d.rename(d.with_name(f".prune-{d.name}-{os.getpid()}"))
        except OSError:
            continue
        shutil.rmtree(gone, ignore_errors=True)
        removed.append(d)
        log.info("pruned unpacked package %s", d)
    return removed


def load_package(path: str | Path, cache: Path | None = None, verify: bool = True,
                 keep_unpacked: int = KEEP_UNPACKED) -> ModelPackage:
    """Open a package folder or zip. With ``verify`` every file's sha256 is checked. A zip is unpacked (once,
    bounded) under ``cache/packages``, which keeps the ``keep_unpacked`` most recently used packages."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model package {p} does not exist", "pass a package folder, a .zip, or a model file")
    if p.is_file() and zipfile.is_zipfile(p):
        from ..config import cache_dir

        p = _extract_zip(p, cache or cache_dir(), keep_unpacked)
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
