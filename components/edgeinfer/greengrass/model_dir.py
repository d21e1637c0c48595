"""Where the model component's unpacked artifact is, without a cross-component recipe variable.

Greengrass Lite resolves no ``{<other component>:artifacts:decompressedPath}``, so the recipe passes the
model component's folder under ``{kernel:rootPath}/packages/artifacts-unarchived/<component>`` (the same
place on both nuclei) and this picks the version folder: the highest semantic version that holds the
unpacked package (``<version>/<stem>``). Both nuclei remove the versions a deployment no longer uses, so
normally there is exactly one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .errors import GreengrassError
from .recipes.semver import Version

log = logging.getLogger(__name__)


def model_path(component_dir: str | Path, stem: str = "model") -> str:
    """``<component_dir>/<newest version>/<stem>``; GreengrassError (with the fix) when there is none."""
    root = Path(component_dir)
    found = []
    for d in root.iterdir() if root.is_dir() else ():
        try:
            version = Version.parse(d.name)
        except ValueError:
            continue
        if (d / stem).is_dir():
            found.append((version, d / stem))
    if not found:
        raise GreengrassError(f"no unpacked model package under {root}/<version>/{stem}",
                              "deploy the model component this recipe depends on (its ZIP unpacks there)")
    found.sort(key=lambda pair: pair[0])
    if len(found) > 1:
        log.info("model component versions present: %s; using the newest", ", ".join(str(p.parent.name)
                                                                                  for _, p in found))
    return str(found[-1][1])
