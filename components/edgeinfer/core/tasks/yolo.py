"""YOLO heads: v5-style ``[boxes, 5 + classes]`` and v8-style ``[4 + classes, boxes]``."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase
from .detections import detections_from
from .outputs import check_num_classes, pick_output, squeeze_leading


class _YoloBase(DecoderBase):
    type: str  # the subclass's Literal tag
    task: str = "detection"
    output: str | None = None  # output name; None = the first output
    score_threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, gt=0)
    agnostic_nms: bool = False
    boxes_normalized: bool = False  # True when cx,cy,w,h are 0..1 of the input instead of input pixels

    def _head(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        arr = pick_output(outputs, self.output, self.type)
        return squeeze_leading(arr, 2, self.type).astype(np.float32, copy=False)

    def _finish(self, boxes: np.ndarray, class_scores: np.ndarray, transform: Transform,
                labels: list[str]) -> TaskOutput:
        """``boxes [N, 4]`` cx,cy,w,h and ``class_scores [N, C]`` -> detections (best class per box)."""
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(class_scores)), class_ids]
        return detections_from(
            boxes, scores, class_ids, transform, labels, box_format="cxcywh",
            normalized=self.boxes_normalized, score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold, max_detections=self.max_detections, agnostic=self.agnostic_nms,
        )


class YoloV5Decoder(_YoloBase):
    """``[boxes, 5 + C]``: cx, cy, w, h, objectness, class scores (score = obj * class)."""

    type: Literal["yolov5"] = "yolov5"

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        rows = self._head(outputs)
        if rows.shape[1] < 6:
            raise ModelError(f"yolov5 output has shape {list(rows.shape)}, expected [boxes, 5 + classes]",
                             "check the decoder type matches the model (yolov8 heads have no objectness)")
        check_num_classes(rows.shape[1] - 5, labels, "yolov5")
        return self._finish(rows[:, :4], rows[:, 4:5] * rows[:, 5:], transform, labels)


class YoloV8Decoder(_YoloBase):
    """``[4 + C, boxes]``: cx, cy, w, h, class scores (no objectness).

    The transposed ``[boxes, 4 + C]`` is accepted too (see ``_rows_first``).
    """

    type: Literal["yolov8"] = "yolov8"

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        rows = _rows_first(self._head(outputs), labels)
        if rows.shape[1] < 5:
            raise ModelError(f"yolov8 output has shape {list(rows.shape)}, expected [4 + classes, boxes]",
                             "check that the decoder type matches the model")
        return self._finish(rows[:, :4], rows[:, 4:], transform, labels)


def _rows_first(head: np.ndarray, labels: list[str]) -> np.ndarray:
    """``[4 + C, N]`` or ``[N, 4 + C]`` -> ``[N, 4 + C]``.

    With labels, the axis of length 4 + len(labels) holds the channels; without, the shorter axis does
    (a head has far more boxes than classes). Ties read as the standard ``[4 + C, N]``.
    """
    if labels:
        channels = 4 + len(labels)
        if head.shape[0] == channels:
            return head.T
        if head.shape[1] == channels:
            return head
        check_num_classes(min(head.shape) - 4, labels, "yolov8")
    return head.T if head.shape[0] <= head.shape[1] else head
