"""The edgeinfer wheel, built from this checkout (``pip wheel --no-deps``), byte-for-byte reproducibly.

The build runs on a clean copy of the project (its top-level files and the folder holding the package,
without caches or an old ``build/``, which setuptools would otherwise package), with ``SOURCE_DATE_EPOCH``
fixed so every entry carries the same timestamp: the same sources always give the same wheel.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .errors import BundleError
from .pip import Progress, no_progress, run_pip

SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01T00:00:00Z, the earliest time a ZIP entry can hold
PACKAGE = Path(__file__).resolve().parents[2]  # the edgeinfer package folder
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".pytest_cache")


def checkout_root() -> Path:
    """The project folder (with pyproject.toml) this edgeinfer is imported from."""
    for parent in PACKAGE.parents:
        project = parent / "pyproject.toml"
        if project.is_file() and 'name = "edgeinfer"' in project.read_text(encoding="utf-8"):
            return parent
    raise BundleError(f"edgeinfer is imported from {PACKAGE}, not from a source checkout, so its wheel cannot "
                      "be built here", "run from a checkout (pip install -e .) or pass --wheel with a built wheel")


def _stage(root: Path, dest: Path) -> Path:
    top = PACKAGE.relative_to(root).parts[0]  # "components" here; "edgeinfer" in a flat layout
    dest.mkdir(parents=True)
    for f in root.iterdir():
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    shutil.copytree(root / top, dest / top, ignore=IGNORED)
    return dest


def build_project_wheel(out: Path, progress: Progress = no_progress) -> Path:
    """Build the edgeinfer wheel of this checkout into ``out``; returns its path."""
    root = checkout_root()
    out.mkdir(parents=True, exist_ok=True)
    progress(f"building the edgeinfer wheel from {root}")
    with tempfile.TemporaryDirectory(prefix="edgeinfer-wheel-") as tmp:
        src = _stage(root, Path(tmp) / "src")
        run_pip(["wheel", "--no-deps", "-w", str(out), str(src)], "building the edgeinfer wheel",
                "check that the checkout builds (pip wheel --no-deps .) and that PyPI is reachable for its "
                "build backend", progress, env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
    wheels = sorted(out.glob("edgeinfer-*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"pip wheel left {len(wheels)} edgeinfer wheels in {out}", "build into an empty folder")
    return wheels[0]
