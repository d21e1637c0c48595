"""Greedy NMS shared by the detection decoders."""

from __future__ import annotations

import numpy as np

from edgeinfer.core.tasks.nms import batched_nms, iou_one_to_many, nms


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32)


def test_iou_values() -> None:
    ious = iou_one_to_many(boxes((0, 0, 10, 10))[0], boxes((0, 0, 10, 5), (20, 20, 30, 30), (5, 5, 5, 5)))
    assert ious.tolist() == [0.5, 0.0, 0.0]


def test_greedy_keeps_best_first_and_suppresses_only_above_threshold() -> None:
    b = boxes((0, 0, 10, 5), (0, 0, 10, 10), (50, 50, 60, 60))  # first two: IoU exactly 0.5
    s = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(b, s, 0.5).tolist() == [1, 0, 2]  # IoU == threshold is kept
    assert nms(b, s, 0.49).tolist() == [1, 2]
    assert nms(b, s, 0.49, max_detections=1).tolist() == [1]
    assert nms(boxes(), np.zeros(0, np.float32), 0.5).tolist() == []


def test_batched_separates_classes_unless_agnostic() -> None:
    b = boxes((0, 0, 10, 10), (1, 0, 11, 10), (0, 1, 10, 11))
    s = np.array([0.9, 0.8, 0.7], np.float32)
    ids = np.array([0, 1, 0])
    assert batched_nms(b, s, ids, 0.5).tolist() == [0, 1]
    assert batched_nms(b, s, ids, 0.5, agnostic=True).tolist() == [0]


def test_batched_separates_classes_with_negative_coordinates() -> None:
    # Boxes partly off the input have negative coordinates; the class offset must still separate them.
    b = boxes((-100, -100, 0, 0), (-100, -100, 0, 0))
    assert batched_nms(b, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.5).tolist() == [0, 1]
