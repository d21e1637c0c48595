"""Where an optimised package came from, kept in its manifest, and the rule that a rejected one is not published.

The lineage lives in the manifest's ``source`` map (``optimize.*`` keys): devices that predate it read it as
provenance and load the package as before, and a signature over the manifest covers it like every other
value. ``check_publishable`` is what ``edgeinfer aws register`` and ``edgeinfer azure manifest
--model-package`` ask before a package leaves for a fleet.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ModelError
from ..modelpkg.manifest import Manifest

log = logging.getLogger(__name__)
PREFIX = "optimize."


class Lineage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    from_package: str  # "name version" of the source package
    from_sha256: str  # its model file's sha256
    method: str  # the target: onnx-int8, tflite-int8, ...
    tool: str  # the converter and its version
    calibration_sha256: str | None = None  # None: a conversion without calibration (fp16)
    calibration_frames: int = 0
    heldout_sha256: str
    agreement: float | None = None  # the weakest agreement figure of the report
    verdict: Literal["accepted", "rejected", "accepted-below"]
    report: str = "agreement.json"  # the full report, a file of the package

    def to_source(self) -> dict[str, str]:
        return {PREFIX + k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


def lineage_of(manifest: Manifest) -> Lineage | None:
    """The package's lineage, or None when it was not made by ``edgeinfer model optimize``."""
    fields = {k.removeprefix(PREFIX): v for k, v in manifest.source.items() if k.startswith(PREFIX)}
    if not fields:
        return None
    try:
        return Lineage.model_validate(fields)
    except ValidationError as exc:
        raise ModelError(f"package {manifest.name} {manifest.version} has an unreadable optimize lineage "
                         f"({exc.error_count()} problems)", "optimize the source package again") from exc


def check_publishable(manifest: Manifest, force: bool = False) -> Lineage | None:
    """Raise ModelError for a package its agreement report rejected, unless ``force``; returns the lineage."""
    lineage = lineage_of(manifest)
    if lineage is None or lineage.verdict != "rejected":
        return lineage
    what = (f"{manifest.name} {manifest.version} ({lineage.method} of {lineage.from_package}) was rejected by its "
            f"agreement report (agreement {lineage.agreement})")
    if force:
        log.warning("publishing %s because it was forced", what)
        return lineage
    raise ModelError(what, f"see {lineage.report} in the package; re-optimise with representative --calibration "
                     "frames, or pass --force to publish it anyway")
