"""YOLO heads: v5-style ``[boxes, 5 + classes]`` and v8-style ``[4 + classes, boxes]``."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase


class _YoloBase(DecoderBase):
    task: str = "detection"
    output: str | None = None  # output name; None = the first output
    score_threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, gt=0)
    agnostic_nms: bool = False
    boxes_normalized: bool = False  # True when cx,cy,w,h are 0..1 of the input instead of input pixels


class YoloV5Decoder(_YoloBase):
    """``[boxes, 5 + C]``: cx, cy, w, h, objectness, class scores (score = obj * class)."""

    type: Literal["yolov5"] = "yolov5"

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raise NotImplementedError


class YoloV8Decoder(_YoloBase):
    """``[4 + C, boxes]``: cx, cy, w, h, class scores (no objectness); transposed ``[boxes, 4 + C]`` accepted."""

    type: Literal["yolov8"] = "yolov8"

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raise NotImplementedError
