"""SSD anchor decoder (BlazeFace conventions): anchor grids, box/keypoint decoding, ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.geometry import Transform
from edgeinfer.core.tasks import SsdAnchorDecoder
from edgeinfer.core.tasks.ssd import ssd_anchors

from .graphs import make_constant_outputs_graph, run_frame

SHORT_RANGE = {"input_width": 128, "input_height": 128, "strides": [8, 16, 16, 16]}
# A 256x128 frame letterboxed into 128x128: scale 0.5, 32 rows of padding above and below.
LETTERBOX = Transform.letterbox(256, 128, 128, 128)
CELL = (7 * 16 + 5) * 2  # first anchor of cell x=5, y=7 on the stride-8 map: centre (44, 60) px


def test_blazeface_anchor_counts() -> None:
    assert len(ssd_anchors(128, 128, [8, 16, 16, 16])) == 896
    assert len(ssd_anchors(192, 192, [4], interpolated_scale_aspect_ratio=0.0)) == 2304


def test_anchor_centres_are_row_major_per_feature_map() -> None:
    a = ssd_anchors(128, 128, [8, 16, 16, 16])
    assert a[0].tolist() == a[1].tolist() == pytest.approx([0.5 / 16, 0.5 / 16])  # two per cell
    assert a[2].tolist() == pytest.approx([1.5 / 16, 0.5 / 16])  # x moves first
    assert a[CELL].tolist() == pytest.approx([44 / 128, 60 / 128])
    assert a[512].tolist() == pytest.approx([0.5 / 8, 0.5 / 8])  # the stride-16 map starts here
    assert a[512 + 6].tolist() == pytest.approx([1.5 / 8, 0.5 / 8])  # 6 anchors per stride-16 cell
    full = ssd_anchors(192, 192, [4], interpolated_scale_aspect_ratio=0.0)
    assert full[1].tolist() == pytest.approx([1.5 / 48, 0.5 / 48])  # one per cell


def test_anchor_rules_follow_mediapipe() -> None:
    # any positive interpolated ratio adds the second anchor; a feature map is ceil(size / stride)
    assert len(ssd_anchors(128, 128, [8], interpolated_scale_aspect_ratio=0.5)) == 512
    assert len(ssd_anchors(100, 100, [16])) == 7 * 7 * 2


def blazeface_outputs(logits: dict[int, float]) -> dict[str, np.ndarray]:
    regressors = np.zeros((896, 16), np.float32)
    regressors[CELL, :6] = [2, -4, 20, 10, 1, 1]  # dx, dy, w, h, first keypoint dx, dy
    regressors[CELL + 1, :4] = [3, -4, 20, 10]  # the cell's second anchor: a near-duplicate box
    scores = np.full((896, 1), -10.0, np.float32)
    for i, v in logits.items():
        scores[i, 0] = v
    return {"regressors": regressors, "classificators": scores}


def test_hand_made_detection_lands_where_expected_after_letterbox() -> None:
    decoder = SsdAnchorDecoder(**SHORT_RANGE, num_keypoints=6)
    out = decoder.decode(blazeface_outputs({CELL: 2.0}), LETTERBOX, ["face"])
    assert len(out.detections) == 1
    det = out.detections[0]
    assert (det.label, det.score) == ("face", pytest.approx(1 / (1 + np.exp(-2.0))))
    # centre (44 + 2, 60 - 4), size 20x10 -> input (36, 51, 56, 61) -> frame x * 2, (y - 32) * 2
    assert det.box == pytest.approx((72.0, 38.0, 112.0, 58.0))
    assert det.keypoints is not None and len(det.keypoints) == 6
    assert det.keypoints[0] == pytest.approx((90.0, 58.0))  # input (45, 61)
    assert det.keypoints[1] == pytest.approx((88.0, 56.0))  # the anchor centre itself


def test_threshold_and_nms() -> None:
    decoder = SsdAnchorDecoder(**SHORT_RANGE)
    both = decoder.decode(blazeface_outputs({CELL: 1.0, CELL + 1: 3.0}), LETTERBOX, ["face"])
    assert [round(d.score, 3) for d in both.detections] == [round(1 / (1 + np.exp(-3.0)), 3)]
    assert both.detections[0].box == pytest.approx((74.0, 38.0, 114.0, 58.0))
    assert decoder.decode(blazeface_outputs({CELL: -0.1}), LETTERBOX, ["face"]).detections == []


def test_blazeface_like_graph_through_onnxruntime(tmp_path: Path) -> None:
    model = make_constant_outputs_graph(tmp_path / "blazeface.onnx", blazeface_outputs({CELL: 2.0}),
                                        input_hw=(128, 128))
    outputs = run_frame(model)
    assert outputs["regressors"].shape == (896, 16)
    out = SsdAnchorDecoder(**SHORT_RANGE, num_keypoints=6).decode(outputs, LETTERBOX, ["face"])
    assert [d.box for d in out.detections] == [pytest.approx((72.0, 38.0, 112.0, 58.0))]
