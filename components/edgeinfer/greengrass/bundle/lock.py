"""The exact wheels a device installs, pinned: every requirement of ``edgeinfer[extras]``, with the markers
evaluated for the TARGET (pip evaluates them for the machine it runs on), met by a wheel in the wheelhouse.

What nothing requires on the target is left out. ``onnxruntime-gpu`` stands in for ``onnxruntime`` (they
cannot share a venv): a GPU bundle meets edgeinfer's ``onnxruntime`` requirement with it. The result is
written as a requirements file for ``pip install --no-deps --require-hashes``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename

from .errors import BundleError

#: requirement name -> the wheel that meets it instead when the wheelhouse has that wheel
SUBSTITUTES: dict[str, str] = {"onnxruntime": "onnxruntime-gpu"}


@dataclass(frozen=True, slots=True)
class WheelInfo:
    path: Path
    name: NormalizedName
    version: str
    requires: tuple[str, ...]
    extras: tuple[str, ...]  # Provides-Extra


def read_wheel(path: Path) -> WheelInfo:
    """Name, version and Requires-Dist of a wheel, from its file name and METADATA."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
        with zipfile.ZipFile(path) as zf:
            meta = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            headers = HeaderParser().parsestr(zf.read(meta).decode("utf-8"))
    except (InvalidWheelFilename, zipfile.BadZipFile, StopIteration, OSError) as exc:
        raise BundleError(f"{path.name} is not a readable wheel ({exc or 'no METADATA'})",
                          "delete it from the wheel cache and build again") from exc
    return WheelInfo(path, name, str(version), tuple(headers.get_all("Requires-Dist") or ()),
                     tuple(canonicalize_name(e) for e in headers.get_all("Provides-Extra") or ()))


def _applies(req: Requirement, extras: frozenset[str], markers: dict[str, str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**markers, "extra": e}) for e in (extras | {""}))


def _provider(name: NormalizedName, wheels: dict[NormalizedName, WheelInfo]) -> WheelInfo | None:
    stand_in = SUBSTITUTES.get(name)
    if stand_in is not None and canonicalize_name(stand_in) in wheels:
        return wheels[canonicalize_name(stand_in)]
    return wheels.get(name)


def lock(root: WheelInfo, extras: tuple[str, ...], wheels: dict[NormalizedName, WheelInfo],
         markers: dict[str, str], target: str) -> list[WheelInfo]:
    """The wheels ``root[extras]`` needs on the target, sorted by name; BundleError for any requirement that
    no wheel in ``wheels`` meets (missing, or the wrong version)."""
    needed: dict[NormalizedName, WheelInfo] = {root.name: root}
    todo: list[tuple[WheelInfo, frozenset[str]]] = [(root, frozenset(canonicalize_name(e) for e in extras))]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        wheel, active = todo.pop()
        if (wheel.name, active) in seen:
            continue
        seen.add((wheel.name, active))
        for spec in wheel.requires:
            try:
                req = Requirement(spec)
            except InvalidRequirement as exc:
                raise BundleError(f"{wheel.path.name} declares an unreadable requirement {spec!r}",
                                  "report it to that package; pin another version of it") from exc
            if not _applies(req, active, markers):
                continue
            name = canonicalize_name(req.name)
            got = _provider(name, wheels)
            if got is None:
                raise BundleError(f"{wheel.name} {wheel.version} needs {req} on {target}, and pip fetched no "
                                  "wheel for it (pip evaluates markers for the machine it runs on)",
                                  "add the wheel with --find-links DIR, or build the bundle on a machine like "
                                  "the devices")
            if not req.specifier.contains(got.version, prereleases=True):
                raise BundleError(f"{wheel.name} {wheel.version} needs {req}, the wheelhouse has {got.name} "
                                  f"{got.version}", "remove the stale wheel from --find-links / the cache")
            needed[got.name] = got
            todo.append((got, frozenset(canonicalize_name(e) for e in req.extras)))
    return sorted(needed.values(), key=lambda w: w.name)


def requirements_txt(locked: list[WheelInfo], digests: dict[str, str], header: str) -> str:
    """One ``name==version --hash=sha256:...`` line per wheel: exactly the wheelhouse, nothing resolved."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{w.name}=={w.version} --hash=sha256:{digests[w.path.name]}" for w in locked]
    return "\n".join(lines) + "\n"
