"""SageMaker's artifact format (``model.tar.gz``), made reproducibly and opened safely.

The registry keeps SageMaker's convention (ModelDataUrl -> a gzipped tar); Greengrass unpacks ZIP
only, so ``publish`` repackages. The tarball is deterministic (sorted, zeroed owners and times, no
gzip timestamp): the same package always hashes the same, which makes the S3 key content-addressed.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from .errors import ArtifactError


def make_tarball(folder: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f.relative_to(folder).as_posix())
            info.size, info.mtime, info.mode = f.stat().st_size, 0, 0o644
            with f.open("rb") as src:
                tf.addfile(info, src)
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
    return out


def extract_tarball(archive: Path, dest: Path) -> Path:
    """Unpack regular files only; links, devices and paths leaving ``dest`` are refused."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tf:
            for m in tf.getmembers():
                parts = Path(m.name).parts
                if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                    raise ArtifactError(f"{archive.name} holds an unsafe entry {m.name!r}",
                                        "repackage the model as a plain tar.gz of its files")
            try:
                tf.extractall(dest, filter="data")
            except TypeError:  # Python without extraction filters: entries were checked above
                tf.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArtifactError(f"{archive.name} is not a readable tar.gz ({exc})",
                            "upload the model as a gzipped tar (SageMaker's model.tar.gz)") from exc
    return dest
