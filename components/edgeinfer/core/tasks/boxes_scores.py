"""Detection models that emit separate boxes / scores (/ classes / count) outputs."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase


class BoxesScoresDecoder(DecoderBase):
    """``boxes [N, 4]`` + ``scores [N]`` or ``[N, C]`` (+ optional ``classes [N]``, ``count []``)."""

    type: Literal["boxes_scores"] = "boxes_scores"
    task: str = "detection"
    boxes_output: str = "boxes"
    scores_output: str = "scores"
    classes_output: str | None = None
    count_output: str | None = None
    box_format: Literal["xyxy", "yxyx", "cxcywh"] = "xyxy"
    boxes_normalized: bool = False
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    apply_nms: bool = True
    max_detections: int = Field(default=100, gt=0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raise NotImplementedError
