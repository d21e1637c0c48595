"""Semantic segmentation: per-class maps -> class-id mask at frame size, label areas, overlay."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase


class SegmentationDecoder(DecoderBase):
    type: Literal["segmentation"] = "segmentation"
    task: str = "segmentation"
    output: str | None = None
    layout: Literal["CHW", "HWC"] = "CHW"
    #: "argmax" over C >= 2 channels; "sigmoid"/"threshold" for one foreground channel (logits / probs)
    activation: Literal["argmax", "sigmoid", "threshold"] = "argmax"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raise NotImplementedError
