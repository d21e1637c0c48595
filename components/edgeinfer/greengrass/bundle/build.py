"""``edgeinfer greengrass bundle``: the inference component's runtime artifact, one ZIP per platform.

1. build the edgeinfer wheel from this checkout (or take ``--wheel``), once for all platforms;
2. ``pip download`` it with its extras' dependencies for the platform and Python (binary wheels only);
3. lock: keep exactly what the target needs (markers evaluated for it; onnxruntime-gpu in place of
   onnxruntime on GPU platforms), write ``requirements.txt`` (sha256 per wheel) and ``manifest.json``;
4. ZIP it reproducibly (sorted entries, fixed timestamps): the same inputs give the same bytes, so the
   content-addressed S3 key of a rebuilt bundle is the key already uploaded.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from ...core.modelpkg import sha256_file
from ..artifacts import zip_package
from ..recipes.platforms import runtime_artifact_name
from .errors import BundleError
from .lock import WheelInfo, lock, read_wheel, requirements_txt
from .manifest import MANIFEST_NAME, REQUIREMENTS_NAME, BundledWheel, BundleManifest
from .pip import Progress, no_progress
from .resolve import download
from .targets import Target
from .wheel import build_project_wheel

log = logging.getLogger(__name__)
PROJECT = "edgeinfer"
GPU_EXTRA, GPU_RUNTIME = "gpu", "onnxruntime-gpu"


@dataclass(frozen=True, slots=True)
class BundleRequest:
    target: Target
    extras: tuple[str, ...] | None = None  # None: the platform's default extras


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    manifest: BundleManifest
    sha256: str
    size: int


def bundle_extras(request: BundleRequest, project: WheelInfo) -> tuple[str, ...]:
    """The extras to install: asked for (or the platform's), GPU platforms always with ``gpu``."""
    p = request.target.platform
    asked = request.extras if request.extras is not None else tuple(p.extras.split(","))
    extras = {canonicalize_name(e) for e in asked if e.strip()}
    if unknown := sorted(extras - set(project.extras)):
        raise BundleError(f"edgeinfer {project.version} has no extra(s) {unknown}",
                          f"use some of: {', '.join(sorted(project.extras))}")
    if p.gpu_runtime:
        extras.add(canonicalize_name(GPU_EXTRA))
    elif GPU_EXTRA in extras:
        raise BundleError(f"{p.key} is a CPU platform: its manifest runs onnxruntime, not onnxruntime-gpu",
                          "bundle --platform linux-amd64-nvidia or linux-aarch64-jetson for GPU hosts")
    return tuple(sorted(extras))


def _project(wheel: Path, version: str | None) -> WheelInfo:
    info = read_wheel(wheel)
    if info.name != PROJECT:
        raise BundleError(f"{wheel.name} is not an edgeinfer wheel", "pass the edgeinfer wheel with --wheel")
    if version is not None and info.version != version:
        raise BundleError(f"the wheel is edgeinfer {info.version}, not {version}",
                          "check out that release (or drop --version to bundle the checkout's version)")
    return info


def _write_lock(folder: Path, locked: list[WheelInfo], project: WheelInfo, target: Target,
                extras: tuple[str, ...]) -> BundleManifest:
    """requirements.txt and manifest.json next to the wheels: what the Install step reads."""
    digests = {w.path.name: sha256_file(w.path) for w in locked}
    manifest = BundleManifest(
        platform=target.platform.key, python=target.python, glibc=target.glibc, extras=list(extras),
        edgeinfer_version=project.version,
        wheels=[BundledWheel(file=w.path.name, name=w.name, version=w.version, sha256=digests[w.path.name],
                             size=w.path.stat().st_size) for w in locked])
    header = (f"edgeinfer {project.version}[{','.join(extras)}] for {target.describe()}: exactly the wheels here.\n"
              "pip install --no-index --no-deps --require-hashes --find-links . -r requirements.txt")
    (folder / REQUIREMENTS_NAME).write_text(requirements_txt(locked, digests, header), encoding="utf-8")
    (folder / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def _one(request: BundleRequest, project: WheelInfo, out: Path, work: Path, cache: Path | None,
         find_links: Sequence[Path], progress: Progress) -> Bundle:
    target, key = request.target, request.target.platform.key
    extras = bundle_extras(request, project)
    folder = work / key
    fetched = download(project.path, extras, target, folder, cache, find_links, progress)
    wheels = {w.name: w for w in map(read_wheel, fetched)}
    if project.name not in wheels:
        raise BundleError(f"pip did not save the edgeinfer wheel into {folder}", "report this with pip --version")
    progress(f"{key}: locking the wheels for {target.describe()}")
    locked = lock(wheels[project.name], extras, wheels, target.markers(), target.describe())
    names = {w.name for w in locked}
    if target.platform.gpu_runtime != (GPU_RUNTIME in names):
        raise BundleError(f"the {key} bundle would {'lack' if target.platform.gpu_runtime else 'hold'} "
                          f"{GPU_RUNTIME}", "bundle GPU hosts with a GPU platform and CPU hosts with a CPU one")
    for unneeded in sorted(set(wheels) - names):
        log.info("%s: %s is not needed on the target, left out", key, unneeded)
        wheels[unneeded].path.unlink()
    manifest = _write_lock(folder, locked, project, target, extras)
    progress(f"{key}: writing {runtime_artifact_name(target.platform)} ({len(locked)} wheels)")
    path = zip_package(folder, out / runtime_artifact_name(target.platform), store=(".whl",))
    return Bundle(path, manifest, sha256_file(path), path.stat().st_size)


def build_bundles(requests: Sequence[BundleRequest], out: Path, *, wheel: Path | None = None,
                  version: str | None = None, find_links: Sequence[Path] = (), cache: Path | None = None,
                  progress: Progress = no_progress) -> list[Bundle]:
    """One runtime bundle ZIP per request, written to ``out``. ``wheel``: a built edgeinfer wheel (default:
    build this checkout's); ``version``: the edgeinfer version the bundle must hold; ``cache``: a folder of
    wheels kept between builds."""
    if not requests:
        raise BundleError("no platform to bundle", "pass --platform (repeat it for several)")
    with tempfile.TemporaryDirectory(prefix="edgeinfer-bundle-") as tmp:
        work = Path(tmp)
        project = _project(wheel or build_project_wheel(work / "project", progress), version)
        out.mkdir(parents=True, exist_ok=True)
        bundles = [_one(r, project, out, work, cache, find_links, progress) for r in requests]
    for b in bundles:
        log.info("%s: %d wheels, %d bytes, sha256 %s", b.path.name, len(b.manifest.wheels), b.size, b.sha256)
    return bundles
