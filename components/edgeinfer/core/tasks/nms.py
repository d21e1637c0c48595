"""Non-maximum suppression in numpy (greedy, per class or class-agnostic)."""

from __future__ import annotations

import numpy as np


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = max(0.0, float(box[2] - box[0])) * max(0.0, float(box[3] - box[1]))
    area_b = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_detections: int = 100) -> np.ndarray:
    """Indices of the boxes kept, highest score first. ``boxes`` is ``[N, 4]`` x1,y1,x2,y2."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = iou_one_to_many(boxes[i], boxes[order[1:]])
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
    max_detections: int = 100, agnostic: bool = False,
) -> np.ndarray:
    """NMS within each class (boxes of different classes never suppress each other) unless agnostic."""
    if agnostic or len(boxes) == 0:
        return nms(boxes, scores, iou_threshold, max_detections)
    # Offset each class into its own region of space: one NMS pass, classes never overlap.
    # The span covers the full coordinate range (boxes partly off the input have negative coordinates).
    span = float(np.max(boxes) - np.min(boxes)) + 1.0
    shifted = boxes + (class_ids.astype(np.float32) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_detections)
