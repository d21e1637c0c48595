"""The frames an optimisation calibrates on and is judged on: read once, hashed, split.

A frame set is a folder, an image or a video file (never a live camera: the same command must give the same
package). Its sha256 covers every frame's shape and pixels in order, so the lineage names exactly the data a
model was calibrated on. Held-out frames are never calibration frames: either a second set (``--heldout``)
or every ``HOLDOUT_EVERY``-th frame of the calibration set, taken out before calibrating.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..preprocess import Preprocessor
from ..sources import open_source

HOLDOUT_EVERY = 4  # without --heldout, frames 3, 7, 11, ... of --calibration are held out


@dataclass(frozen=True)
class FrameSet:
    spec: str  # what the user passed
    images: list[np.ndarray]  # BGR uint8, as a source delivers them

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for img in self.images:
            h.update(np.asarray(img.shape, np.int64).tobytes())
            h.update(np.ascontiguousarray(img).tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.images)


def read_frames(spec: str, limit: int, what: str) -> FrameSet:
    """Up to ``limit`` frames from a folder, image or video file. Raises ConfigError when there are none."""
    if spec.strip().isdigit() or "://" in spec or spec.startswith(("gst:", "synthetic")):
        raise ConfigError(f"--{what} {spec!r} is a live or synthetic source",
                          f"pass a folder, image or video file of representative frames as --{what}")
    source = open_source(spec, live=False)
    images: list[np.ndarray] = []
    try:
        for frame in source:
            images.append(frame.image)
            if len(images) >= limit:
                break
    finally:
        source.close()
    if not images:
        raise ConfigError(f"--{what} {spec!r} holds no readable frames",
                          f"pass a folder or video with images as --{what}")
    return FrameSet(spec, images)


def split(calibration: FrameSet, heldout: FrameSet | None) -> tuple[FrameSet, FrameSet]:
    """(calibration, held-out): ``heldout`` as given, or every HOLDOUT_EVERY-th calibration frame taken out."""
    if heldout is not None:
        return calibration, heldout
    if len(calibration) < HOLDOUT_EVERY:
        raise ConfigError(f"--calibration {calibration.spec!r} has {len(calibration)} frames: too few to hold some "
                          "out for the agreement report", f"pass at least {HOLDOUT_EVERY} frames, or --heldout FRAMES")
    keep = [img for i, img in enumerate(calibration.images) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    held = [img for i, img in enumerate(calibration.images) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    return FrameSet(calibration.spec, keep), FrameSet(f"{calibration.spec} (every {HOLDOUT_EVERY}th frame)", held)


def tensors(frames: FrameSet, preprocessor: Preprocessor) -> list[np.ndarray]:
    """Each frame as the model's input tensor, with a batch dim of one."""
    return [preprocessor(img)[0][None] for img in frames.images]
