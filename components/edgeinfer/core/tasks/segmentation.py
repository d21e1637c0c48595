"""Semantic segmentation: per-class maps -> class-id mask at frame size, label areas, overlay."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ConfigError, FrameError, ModelError
from ..geometry import Transform
from ..types import Segmentation, TaskOutput
from .base import DecoderBase, label_of, sigmoid
from .outputs import pick_output, squeeze_leading
from .palette import palette


class SegmentationDecoder(DecoderBase):
    """``[C, H, W]`` (CHW), ``[H, W, C]`` (HWC) or ``[H, W]`` maps -> a class-id mask at frame size.

    ``argmax`` picks the best of C >= 2 channels per pixel. ``sigmoid`` (logits) and ``threshold``
    (probabilities) read ONE foreground channel: pixels >= ``threshold`` become class 1, the rest 0,
    so labels read like ``["background", "person"]``. A map smaller or larger than the model input is
    first scaled to the input size; the letterbox padding is cropped off, then the mask is resized to the
    frame with nearest-neighbour (class ids never blend). ``areas`` holds every label, 0.0 included,
    plus any class id the model produced beyond the labels (named by its number).
    """

    type: Literal["segmentation"] = "segmentation"
    task: str = "segmentation"
    output: str | None = None
    layout: Literal["CHW", "HWC"] = "CHW"
    #: "argmax" over C >= 2 channels; "sigmoid"/"threshold" for one foreground channel (logits / probs)
    activation: Literal["argmax", "sigmoid", "threshold"] = "argmax"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        mask = self._input_mask(pick_output(outputs, self.output, "segmentation"))
        if mask.shape != (transform.input_h, transform.input_w):
            mask = _resize_nearest(mask, transform.input_w, transform.input_h)
        mask = _resize_nearest(transform.crop_valid(mask), transform.frame_w, transform.frame_h)
        counts = np.bincount(mask.ravel(), minlength=len(labels))
        areas = {label_of(labels, k): float(c) / mask.size for k, c in enumerate(counts)
                 if k < len(labels) or c > 0}
        return TaskOutput(segmentation=Segmentation(mask=mask, areas=areas))

    def _input_mask(self, raw: np.ndarray) -> np.ndarray:
        """Model output -> ``[h, w]`` int32 class ids at the output's own resolution."""
        maps = squeeze_leading(raw, 3, "segmentation") if raw.ndim > 3 else raw
        if maps.ndim == 2:
            maps = maps[None] if self.layout == "CHW" else maps[..., None]
        elif maps.ndim != 3:
            raise ModelError(f"segmentation output has shape {list(raw.shape)}, expected [C, H, W], "
                             "[H, W, C] or [H, W] (batch removed)", "check the decoder's output and layout")
        axis = 0 if self.layout == "CHW" else 2
        channels = maps.shape[axis]
        if self.activation == "argmax":
            if channels < 2:
                raise ModelError("segmentation output has one channel, argmax needs two or more",
                                 "set the decoder's activation to sigmoid (logits) or threshold "
                                 "(probabilities)")
            return maps.argmax(axis=axis).astype(np.int32)
        if channels != 1:
            raise ModelError(f"segmentation activation {self.activation} reads one foreground channel, "
                             f"the output has {channels}", "set the decoder's activation to argmax")
        fg = np.take(maps, 0, axis=axis).astype(np.float32, copy=False)
        if self.activation == "sigmoid":
            fg = sigmoid(fg)
        return (fg >= self.threshold).astype(np.int32)


def _resize_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    if mask.shape == (height, width):
        return np.ascontiguousarray(mask)
    import cv2  # lazily: the cloud side (e.g. the rollout Lambda) reads manifests without OpenCV

    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)


def overlay(image_bgr: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A copy of ``image_bgr`` with each class > 0 blended in its ``palette`` colour; class 0 stays as is."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"overlay alpha must lie in 0..1, got {alpha}", "pass an alpha between 0 and 1")
    if image_bgr.shape[:2] != mask.shape[:2]:
        raise FrameError(f"mask {list(mask.shape[:2])} does not match the frame {list(image_bgr.shape[:2])}",
                         "overlay the mask the decoder produced for this frame")
    out = image_bgr.copy()
    fg = mask > 0
    if not fg.any():
        return out
    ids = mask[fg].astype(np.int64)
    colours = palette(int(ids.max()) + 1)[ids].astype(np.float32)
    blended = image_bgr[fg].astype(np.float32) * (1.0 - alpha) + colours * alpha
    out[fg] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
