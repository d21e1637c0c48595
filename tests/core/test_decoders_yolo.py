"""YOLOv5 / YOLOv8 decoders: hand-made heads, then the same heads through real ONNX Runtime sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.errors import ModelError
from edgeinfer.core.geometry import Transform
from edgeinfer.core.tasks import YoloV5Decoder, YoloV8Decoder

from .graphs import make_yolov5_graph, make_yolov8_graph, run_frame

LABELS = ["cat", "dog"]
# A 128x64 frame letterboxed into 64x64: scale 0.5, 16 rows of padding above and below.
LETTERBOX = Transform.letterbox(128, 64, 64, 64)


def v8_rows(*rows: tuple[float, ...]) -> np.ndarray:
    """``[N, 4 + C]`` rows: cx, cy, w, h, class scores."""
    return np.array(rows, dtype=np.float32)


def v8_head(*rows: tuple[float, ...]) -> dict[str, np.ndarray]:
    return {"output0": v8_rows(*rows).T.copy()}


def test_v8_box_lands_in_frame_pixels_after_letterbox() -> None:
    # cx,cy,w,h 32,32,20,10 -> input 22,27,42,37 -> frame x/0.5, (y-16)/0.5
    out = YoloV8Decoder().decode(v8_head((32, 32, 20, 10, 0.1, 0.9)), LETTERBOX, LABELS)
    assert len(out.detections) == 1
    det = out.detections[0]
    assert (det.label, det.class_id) == ("dog", 1)
    assert det.score == pytest.approx(0.9)
    assert det.box == pytest.approx((44.0, 22.0, 84.0, 42.0))


def test_v8_stretch_transform_scales_each_axis() -> None:
    stretch = Transform.stretch(200, 100, 100, 100)  # x halved, y unchanged
    out = YoloV8Decoder().decode(v8_head((20, 30, 20, 20, 0.8, 0.0)), stretch, LABELS)
    assert out.detections[0].box == pytest.approx((20.0, 20.0, 60.0, 40.0))


def test_v8_normalized_boxes_are_scaled_by_the_input_size() -> None:
    out = YoloV8Decoder(boxes_normalized=True).decode(
        v8_head((0.5, 0.5, 20 / 64, 10 / 64, 0.1, 0.9)), LETTERBOX, LABELS)
    assert out.detections[0].box == pytest.approx((44.0, 22.0, 84.0, 42.0))


def test_v8_transposed_head_decodes_the_same() -> None:
    # Real heads hold far more boxes than channels: pad to 8 rows so "the smaller axis" is meaningful.
    rows = v8_rows((32, 32, 20, 10, 0.1, 0.9), (10, 40, 8, 8, 0.7, 0.2), (50, 20, 8, 8, 0.3, 0.6),
                   *[(0, 0, 0, 0, 0, 0)] * 5)
    standard = YoloV8Decoder().decode({"o": rows.T.copy()}, LETTERBOX, LABELS)
    transposed = YoloV8Decoder().decode({"o": rows}, LETTERBOX, LABELS)
    unlabelled = YoloV8Decoder().decode({"o": rows}, LETTERBOX, [])  # smaller axis = channels
    assert [d.box for d in transposed.detections] == [d.box for d in standard.detections]
    assert len(standard.detections) == 3
    assert [d.class_id for d in unlabelled.detections] == [1, 0, 1]
    assert [d.label for d in unlabelled.detections] == ["1", "0", "1"]


def test_v8_threshold_keeps_scores_at_or_above_it() -> None:
    head = v8_head((10, 32, 8, 8, 0.5, 0.0), (30, 32, 8, 8, 0.49, 0.0), (50, 32, 8, 8, 0.0, 0.7))
    out = YoloV8Decoder(score_threshold=0.5).decode(head, LETTERBOX, LABELS)
    assert [d.score for d in out.detections] == pytest.approx([0.7, 0.5])
    stricter = YoloV8Decoder().with_threshold(0.6).decode(head, LETTERBOX, LABELS)
    assert [d.label for d in stricter.detections] == ["dog"]


def test_v8_nms_is_per_class_unless_agnostic() -> None:
    # Two near-identical boxes of different classes, plus a same-class duplicate of the first.
    head = v8_head((32, 32, 20, 20, 0.9, 0.0), (33, 32, 20, 20, 0.0, 0.8), (32, 33, 20, 20, 0.85, 0.0))
    per_class = YoloV8Decoder().decode(head, LETTERBOX, LABELS)
    agnostic = YoloV8Decoder(agnostic_nms=True).decode(head, LETTERBOX, LABELS)
    assert [(d.label, round(d.score, 2)) for d in per_class.detections] == [("cat", 0.9), ("dog", 0.8)]
    assert [(d.label, round(d.score, 2)) for d in agnostic.detections] == [("cat", 0.9)]


def test_v8_orders_by_score_and_caps_at_max_detections() -> None:
    head = v8_head(*[(8 + 12 * i, 32, 8, 8, 0.3 + 0.1 * i, 0.0) for i in range(5)])
    out = YoloV8Decoder(max_detections=3).decode(head, LETTERBOX, LABELS)
    assert [d.score for d in out.detections] == pytest.approx([0.7, 0.6, 0.5])
    assert out.detections[0].box == pytest.approx((104.0, 24.0, 120.0, 40.0))  # cx 56 -> x 52..60


def test_v8_box_inside_the_letterbox_padding_is_dropped() -> None:
    head = v8_head((32, 6, 10, 8, 0.9, 0.0), (32, 32, 10, 8, 0.0, 0.6))  # first one lies in rows 2..10
    out = YoloV8Decoder().decode(head, LETTERBOX, LABELS)
    assert [d.label for d in out.detections] == ["dog"]


def test_v5_score_is_objectness_times_class() -> None:
    rows = np.array([[32, 32, 20, 10, 0.5, 0.2, 0.8],    # dog 0.4
                     [10, 40, 8, 8, 0.9, 0.9, 0.1]], np.float32)  # cat 0.81
    out = YoloV5Decoder(score_threshold=0.35).decode({"output0": rows}, LETTERBOX, LABELS)
    assert [(d.label, round(d.score, 4)) for d in out.detections] == [("cat", 0.81), ("dog", 0.4)]
    assert out.detections[1].box == pytest.approx((44.0, 22.0, 84.0, 42.0))
    assert [d.label for d in YoloV5Decoder(score_threshold=0.45).decode(
        {"output0": rows}, LETTERBOX, LABELS).detections] == ["cat"]


def test_v5_normalized_boxes() -> None:
    rows = np.array([[0.5, 0.5, 20 / 64, 10 / 64, 1.0, 0.0, 0.9]], np.float32)
    out = YoloV5Decoder(boxes_normalized=True).decode({"output0": rows}, LETTERBOX, LABELS)
    assert out.detections[0].box == pytest.approx((44.0, 22.0, 84.0, 42.0))


def test_named_output_is_used_and_a_missing_one_is_a_typed_error() -> None:
    outputs = {"aux": np.zeros((3, 3), np.float32), "det": v8_rows((32, 32, 20, 10, 0.1, 0.9)).T.copy()}
    out = YoloV8Decoder(output="det").decode(outputs, LETTERBOX, LABELS)
    assert out.detections[0].label == "dog"
    with pytest.raises(ModelError, match=r"'nope' is not among the model's outputs \['aux', 'det'\] -> "):
        YoloV8Decoder(output="nope").decode(outputs, LETTERBOX, LABELS)


def test_label_count_mismatch_is_a_typed_error() -> None:
    with pytest.raises(ModelError, match="3 classes but the manifest lists 2 labels"):
        YoloV5Decoder().decode({"o": np.zeros((4, 8), np.float32)}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="3 classes but the manifest lists 2 labels"):
        YoloV8Decoder().decode({"o": np.zeros((7, 100), np.float32)}, LETTERBOX, LABELS)


def test_empty_when_nothing_passes() -> None:
    out = YoloV8Decoder().decode(v8_head((32, 32, 20, 10, 0.1, 0.2)), LETTERBOX, LABELS)
    assert out.detections == []


# -- through real ONNX Runtime sessions ------------------------------------------------------------

@pytest.mark.parametrize("transposed", [False, True])
def test_v8_graph_through_onnxruntime(tmp_path: Path, transposed: bool) -> None:
    rows = v8_rows((32, 32, 20, 10, 0.1, 0.9), (33, 33, 20, 10, 0.05, 0.6), (12, 40, 8, 8, 0.7, 0.0))
    model = make_yolov8_graph(tmp_path / "yolov8.onnx", rows, transposed=transposed)
    outputs = run_frame(model)
    assert outputs["output0"].shape == ((3, 6) if transposed else (6, 3))
    out = YoloV8Decoder().decode(outputs, LETTERBOX, LABELS)
    assert [(d.label, round(d.score, 3)) for d in out.detections] == [("dog", 0.9), ("cat", 0.7)]
    assert out.detections[0].box == pytest.approx((44.0, 22.0, 84.0, 42.0))
    assert out.detections[1].box == pytest.approx((16.0, 40.0, 32.0, 56.0))


def test_v5_graph_through_onnxruntime(tmp_path: Path) -> None:
    rows = np.array([[32, 32, 20, 10, 0.5, 0.2, 0.8], [10, 40, 8, 8, 0.1, 0.9, 0.1]], np.float32)
    out = YoloV5Decoder().decode(run_frame(make_yolov5_graph(tmp_path / "v5.onnx", rows)), LETTERBOX, LABELS)
    assert [(d.label, round(d.score, 3)) for d in out.detections] == [("dog", 0.4)]
    assert out.detections[0].box == pytest.approx((44.0, 22.0, 84.0, 42.0))
