"""Write the optimised package: model file, the agreement report (JSON, and a picture when matplotlib is there)
and a manifest that keeps the source's input spec, decoder and labels and adds the lineage.

Written into a temporary folder beside ``out`` and renamed into place, so a failed run leaves nothing that
looks like a package. ``out`` must not exist yet (an optimised package is never overwritten in place).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError, EdgeInferError
from ..modelpkg import ModelPackage
from ..modelpkg.manifest import FileEntry, ModelFormat
from ..modelpkg.package import sha256_file, write_manifest
from .lineage import Lineage
from .report import AgreementReport

log = logging.getLogger(__name__)
REPORT_NAME = "agreement.json"
PICTURE_NAME = "agreement.png"


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} already exists", "pass a new folder for the optimised package")


def write_package(*, source: ModelPackage, out: Path, files: dict[str, Path], model_name: str, fmt: ModelFormat,
                  name: str, version: str, lineage: Lineage, report: AgreementReport, picture: bool) -> Path:
    """``files``: name in the package -> file to copy (``model_name`` among them)."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        for rel, path in files.items():
            shutil.copyfile(path, tmp / rel)
        (tmp / REPORT_NAME).write_text(report.model_dump_json(indent=2) + "\n")
        if picture and _picture(report, tmp / PICTURE_NAME) is None:
            log.info("no %s: matplotlib is not installed (pip install 'edgeinfer[plots]')", PICTURE_NAME)
        names = sorted(p.name for p in tmp.iterdir())
        manifest = source.manifest.model_copy(update={
            "name": name, "version": version, "format": fmt, "model_file": model_name, "encryption": None,
            "files": [FileEntry(path=n, sha256=sha256_file(tmp / n), size=(tmp / n).stat().st_size) for n in names],
            "source": {**source.manifest.source, **lineage.to_source()}})
        write_manifest(type(manifest).model_validate(manifest.model_dump()), tmp)  # validated as a whole
        if out.exists():
            out.rmdir()  # empty (check_out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _picture(report: AgreementReport, path: Path) -> Path | None:
    try:
        from .plot import report_figure

        return report_figure(report, path)
    except EdgeInferError:  # matplotlib missing: the JSON says it all
        return None
