"""Bounded unpacking of a model package zip.

Before a byte is written the central directory is checked: member count, total uncompressed size,
the inflation ratio of each large member and of the whole archive, and every member path (no
absolute paths, ``..``, backslashes or NULs: nothing may land outside the folder). The manifest is
read from the archive (size-capped) so the caller can validate it first. Extraction then streams each
member with a byte counter, because a central directory can lie about sizes.
"""

from __future__ import annotations

import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import ModelError

MAX_UNPACKED_BYTES = 2 * 1024**3  # all members together
MAX_RATIO = 100  # uncompressed/compressed: ONNX/TFLite weights deflate 1.1-2x, a zip bomb 100-1000x
RATIO_FLOOR_BYTES = 1024**2  # members (and archives) smaller than this may compress as much as they like
MAX_MEMBERS = 1000
MANIFEST_MAX_BYTES = 8 * 1024**2
UNPACK_MARGIN_BYTES = 16 * 1024**2  # free space left over after unpacking
MANIFEST_NAME = "manifest.yaml"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ZipPlan:
    """What will be unpacked: the members under ``prefix`` (``""`` or ``"<top>/"``), stripped of it."""

    prefix: str
    members: tuple[zipfile.ZipInfo, ...]
    total_bytes: int
    manifest_text: str

    def member(self, path: str) -> zipfile.ZipInfo | None:
        return next((m for m in self.members if m.filename == self.prefix + path), None)


def _bad(zip_name: str, problem: str, fix: str = "rebuild the package with `edgeinfer model import` and "
         "zip its folder") -> ModelError:
    return ModelError(f"{zip_name} {problem}", fix)


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """The path parts of a member name, or None when it could land outside the folder."""
    if not name or "\\" in name or "\0" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if not parts or ".." in parts:
        return None
    return parts


def plan_zip(zf: zipfile.ZipFile, zip_name: str, max_bytes: int = MAX_UNPACKED_BYTES,
             max_ratio: float = MAX_RATIO, max_members: int = MAX_MEMBERS) -> ZipPlan:
    """Check the central directory and read the manifest; nothing is written. Raises ModelError."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise _bad(zip_name, f"has {len(infos)} members, more than the {max_members} a model package may hold")
    for info in infos:
        if _safe_parts(info.filename) is None:
            raise _bad(zip_name, f"holds an unsafe path {info.filename!r} (outside the package folder)")
    names = {i.filename for i in infos}
    if len(names) != len(infos):
        raise _bad(zip_name, "holds the same path twice")
    prefix = ""
    if MANIFEST_NAME not in names:  # zipped with a top-level folder
        folders = {parts[0] for i in infos if len(parts := _safe_parts(i.filename) or ()) > 1}
        if len(folders) == 1 and f"{(top := next(iter(folders)))}/{MANIFEST_NAME}" in names:
            prefix = f"{top}/"
        else:
            raise _bad(zip_name, f"has no {MANIFEST_NAME}", "zip a package folder made by `edgeinfer model import`")
    members = tuple(i for i in infos if i.filename.startswith(prefix))
    total = sum(i.file_size for i in members)
    if total > max_bytes:
        raise _bad(zip_name, f"unpacks to {total} bytes, over the {max_bytes}-byte limit for a model package",
                   "check the package (a zip bomb?) or raise the limit where the package is loaded")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > max_ratio:
            raise _bad(zip_name, f"member {info.filename!r} inflates {ratio:.0f}x "
                       f"({info.compress_size} -> {info.file_size} bytes), over the {max_ratio:g}x limit",
                       "model weights compress about 2x: this is not a model package (a zip bomb?)")
    packed = sum(i.compress_size for i in members)
    if total > RATIO_FLOOR_BYTES and total > max_ratio * max(packed, 1):
        raise _bad(zip_name, f"inflates {total / max(packed, 1):.0f}x in all ({packed} -> {total} bytes), over the "
                   f"{max_ratio:g}x limit", "model weights compress about 2x: this is not a model package")
    manifest = next(i for i in members if i.filename == prefix + MANIFEST_NAME)
    if manifest.file_size > MANIFEST_MAX_BYTES:
        raise _bad(zip_name, f"has a {manifest.file_size}-byte {MANIFEST_NAME}, over {MANIFEST_MAX_BYTES} bytes")
    raw = _read_bounded(zf, manifest, zip_name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(zip_name, f"has a {MANIFEST_NAME} that is not UTF-8 text") from exc
    return ZipPlan(prefix, members, total, text)


def _read_bounded(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str) -> bytes:
    chunks, got = [], 0
    with _open_member(zf, info, zip_name) as src:
        while block := _read(src, info, zip_name):
            got += len(block)
            if got > info.file_size:
                raise _lied(zip_name, info)
            chunks.append(block)
    return b"".join(chunks)


def extract_plan(zf: zipfile.ZipFile, plan: ZipPlan, dest: Path, zip_name: str,
                 max_bytes: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack the planned members into the (empty) folder ``dest``, counting bytes as they come.
    Raises ModelError; the caller removes ``dest`` on failure."""
    free = shutil.disk_usage(dest).free
    if plan.total_bytes + UNPACK_MARGIN_BYTES > free:
        raise _bad(zip_name, f"needs {plan.total_bytes + UNPACK_MARGIN_BYTES} bytes to unpack (with margin), only "
                   f"{free} free under {dest.parent}", f"free space under {dest.parent}")
    root = dest.resolve()
    written = 0
    for info in plan.members:
        parts = _safe_parts(info.filename[len(plan.prefix):])
        if parts is None:  # the prefix itself (a folder entry)
            continue
        target = root.joinpath(*parts)
        if root not in target.parents:
            raise _bad(zip_name, f"holds an unsafe path {info.filename!r} (outside the package folder)")
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            got = 0
            with _open_member(zf, info, zip_name) as src, open(target, "xb") as out:
                while block := _read(src, info, zip_name):
                    got += len(block)
                    written += len(block)
                    if got > info.file_size or written > max_bytes:
                        raise _lied(zip_name, info)
                    out.write(block)
        except OSError as exc:
            raise _bad(zip_name, f"cannot be unpacked into {dest.parent}: {exc.strerror or exc}",
                       f"free space under {dest.parent} or make it writable") from exc


def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str) -> IO[bytes]:
    try:
        return zf.open(info)
    except (NotImplementedError, RuntimeError) as exc:  # unsupported compression, encrypted member
        raise _bad(zip_name, f"member {info.filename!r} cannot be read: {exc}",
                   "zip the package with plain deflate and no password") from exc


def _read(src: IO[bytes], info: zipfile.ZipInfo, zip_name: str) -> bytes:
    try:
        return src.read(_CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _bad(zip_name, f"member {info.filename!r} is corrupt ({exc})", "re-download the package") from exc


def _lied(zip_name: str, info: zipfile.ZipInfo) -> ModelError:
    return _bad(zip_name, f"member {info.filename!r} inflates past the {info.file_size} bytes its directory "
                "declares (a zip bomb?)", "re-download the package from a trusted source")
