"""Shared detection steps: threshold, box format -> x1,y1,x2,y2, NMS, frame mapping, ``Detection`` objects."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..geometry import Transform
from ..types import Detection, TaskOutput
from .base import label_of
from .nms import batched_nms

BoxFormat = Literal["xyxy", "yxyx", "cxcywh"]


def to_xyxy(boxes: np.ndarray, box_format: BoxFormat) -> np.ndarray:
    """``[N, 4]`` boxes in ``box_format`` -> ``[N, 4]`` x1, y1, x2, y2 (float32, a new array)."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if box_format == "xyxy":
        return b.copy()
    if box_format == "yxyx":
        return b[:, [1, 0, 3, 2]]
    half_w, half_h = b[:, 2] / 2.0, b[:, 3] / 2.0
    return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)


def detections_from(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, transform: Transform, labels: list[str], *,
    box_format: BoxFormat, normalized: bool, score_threshold: float, iou_threshold: float,
    max_detections: int, apply_nms: bool = True, agnostic: bool = False,
) -> TaskOutput:
    """Candidates in model-input space -> detections in frame pixels, highest score first.

    Keeps scores >= ``score_threshold``; ``normalized`` boxes are 0..1 of the model input. NMS runs per
    class unless ``agnostic``. A box that lies wholly outside the frame (in the letterbox padding) has
    no area once clipped to the frame and is dropped.
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    idx = np.nonzero(scores >= score_threshold)[0]
    if idx.size == 0:
        return TaskOutput()
    xyxy = to_xyxy(np.asarray(boxes).reshape(-1, 4)[idx], box_format)
    if normalized:
        xyxy *= np.array([transform.input_w, transform.input_h] * 2, dtype=np.float32)
    kept_scores = scores[idx]
    kept_ids = np.asarray(class_ids).reshape(-1)[idx].astype(np.int64)
    if apply_nms:
        order = batched_nms(xyxy, kept_scores, kept_ids, iou_threshold, max_detections, agnostic)
    else:
        order = np.argsort(-kept_scores, kind="stable")[:max_detections]
    frame_boxes = transform.boxes_to_frame(xyxy[order])
    dets = [
        Detection(label=label_of(labels, int(kept_ids[i])), class_id=int(kept_ids[i]),
                  score=float(kept_scores[i]), box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])))
        for i, b in zip(order, frame_boxes, strict=True)
        if b[2] > b[0] and b[3] > b[1]
    ]
    return TaskOutput(detections=dets)
