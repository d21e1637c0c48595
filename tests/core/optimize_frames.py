"""Held-out frames for the optimize tests: the demo's sample images and variants of them (mirrored, zoomed,
darker), so the report judges more faces than the two sample photos hold, on frames nobody calibrated on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def heldout_folder(images: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(images.glob("*.png")):
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        variants = {"": img, "-mirror": img[:, ::-1],
                    "-zoom": cv2.resize(img[h // 10: h - h // 10, w // 10: w - w // 10], (w, h)),
                    "-dark": np.clip(img.astype(np.int16) - 40, 0, 255).astype(np.uint8)}
        for suffix, v in variants.items():
            cv2.imwrite(str(out / f"{path.stem}{suffix}.png"), np.ascontiguousarray(v))
    return out


def rejected_copy(package: Path, out: Path, verdict: str = "rejected") -> Path:
    """A copy of ``package`` whose manifest carries an optimize lineage with ``verdict`` (the refusal tests;
    test_optimize_package.py makes a really rejected package the slow way)."""
    import shutil

    from edgeinfer.core.modelpkg import load_package
    from edgeinfer.core.modelpkg.package import write_manifest
    from edgeinfer.core.optimize.lineage import Lineage

    shutil.copytree(package, out)
    pkg = load_package(out)
    lineage = Lineage(from_package="blazeface-full-range 1.0.0", from_sha256=pkg.model_sha256, method="onnx-int8",
                      tool="test", calibration_sha256="0" * 64, calibration_frames=8, heldout_sha256="1" * 64,
                      agreement=0.4, verdict=verdict)  # type: ignore[arg-type]
    write_manifest(pkg.manifest.model_copy(update={"source": {**pkg.manifest.source, **lineage.to_source()}}), out)
    return out
