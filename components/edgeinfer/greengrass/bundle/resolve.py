"""Fetch edgeinfer's dependencies for a target with ``pip download`` (binary wheels only), through a cache.

The cache is a plain folder of wheels given to pip as ``--find-links``: a wheel pip already has there is
copied instead of downloaded (pip prefers a local file over the index's identical one), and every wheel
fetched from the index is added to it. The project's own wheel is never cached (it changes with every
edit), nor is one taken from a ``--find-links`` folder: a private or stand-in wheel stays out of the
next bundle that does not ask for it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from .pip import Progress, no_progress, run_pip
from .targets import Target

log = logging.getLogger(__name__)


def _remember(wheels: list[Path], cache: Path, skip: set[str]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for w in wheels:
        dest = cache / w.name
        if w.name not in skip and not dest.exists():
            partial = cache / f".{w.name}.partial"
            shutil.copyfile(w, partial)
            partial.replace(dest)  # never a half-written wheel in the cache
            log.debug("cached %s", w.name)


def download(project_wheel: Path, extras: Sequence[str], target: Target, dest: Path, cache: Path | None,
             find_links: Sequence[Path] = (), progress: Progress = no_progress) -> list[Path]:
    """``project_wheel[extras]`` and all its dependencies as wheels for ``target``, in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    links = [*([cache] if cache is not None and cache.is_dir() else []), *find_links]
    args = ["download", "-d", str(dest), *target.pip_args(plain_linux=bool(find_links))]
    for link in links:
        args += ["--find-links", str(link)]
    root = f"{project_wheel}[{','.join(extras)}]" if extras else str(project_wheel)
    progress(f"{target.platform.key}: resolving edgeinfer[{','.join(extras)}] for {target.describe()}")
    run_pip([*args, root], f"resolving the dependencies for {target.describe()}",
            "check that PyPI is reachable and has wheels for this platform and Python (pass --find-links DIR "
            "for wheels PyPI lacks, e.g. NVIDIA's onnxruntime-gpu for Jetson)", progress)
    wheels = sorted(dest.glob("*.whl"))
    if cache is not None:
        local = {w.name for folder in find_links for w in Path(folder).glob("*.whl")}
        _remember(wheels, cache, skip={project_wheel.name, *local})
    return wheels
