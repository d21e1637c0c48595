"""Detection models that emit separate boxes / scores (/ classes / count) outputs."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase
from .detections import detections_from
from .outputs import pick_output, squeeze_leading


class BoxesScoresDecoder(DecoderBase):
    """``boxes [N, 4]`` + ``scores [N]`` or ``[N, C]`` (+ optional ``classes [N]``, ``count []``).

    TensorFlow Object Detection API exports: ``box_format="yxyx"``, ``boxes_normalized=True``,
    ``classes_output`` and ``count_output`` set, ``apply_nms=False`` (the graph already ran NMS).
    """

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
    agnostic_nms: bool = False
    max_detections: int = Field(default=100, gt=0)
    #: added to the ``classes`` output to index ``labels`` (-1 for models whose class ids start at 1)
    class_id_offset: int = 0

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        boxes = squeeze_leading(pick_output(outputs, self.boxes_output, "boxes"), 2, "boxes")
        if boxes.shape[1] != 4:
            raise ModelError(f"boxes output has shape {list(boxes.shape)}, expected [N, 4]",
                             "point boxes_output at the model's box tensor")
        scores, class_ids = self._scores_and_classes(outputs)
        if len(boxes) != len(scores):
            raise ModelError(f"boxes output has {len(boxes)} rows but scores has {len(scores)}",
                             "point boxes_output and scores_output at matching tensors")
        n = len(boxes)
        if self.count_output is not None:
            count = np.asarray(pick_output(outputs, self.count_output, "count")).ravel()
            n = int(np.clip(np.rint(count[0]), 0, n)) if count.size else n
        return detections_from(
            boxes[:n], scores[:n], class_ids[:n], transform, labels, box_format=self.box_format,
            normalized=self.boxes_normalized, score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold, max_detections=self.max_detections, apply_nms=self.apply_nms,
            agnostic=self.agnostic_nms,
        )

    def _scores_and_classes(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(pick_output(outputs, self.scores_output, "scores"), dtype=np.float32)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim == 2 and self.classes_output is None:
            class_ids = scores.argmax(axis=1)
            return scores[np.arange(len(scores)), class_ids], class_ids
        scores = squeeze_leading(scores, 1, "scores")
        if self.classes_output is None:
            return scores, np.zeros(len(scores), dtype=np.int64)
        classes = squeeze_leading(pick_output(outputs, self.classes_output, "classes"), 1, "classes")
        if len(classes) != len(scores):
            raise ModelError(f"classes output has {len(classes)} rows but scores has {len(scores)}",
                             "point classes_output and scores_output at matching tensors")
        return scores, np.rint(classes).astype(np.int64) + self.class_id_offset
