"""Boxes + scores (+ classes + count) decoder: box formats, count output, NMS on/off, ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter

from edgeinfer.core.errors import ModelError
from edgeinfer.core.geometry import Transform
from edgeinfer.core.tasks import BoxesScoresDecoder, DecoderConfig

from .graphs import make_constant_outputs_graph, run_frame

LABELS = ["person", "car", "bike"]
LETTERBOX = Transform.letterbox(128, 64, 64, 64)  # scale 0.5, pad_y 16
EXPECTED = (44.0, 22.0, 84.0, 42.0)  # input box x 22..42, y 27..37 in frame pixels


def tf_od_outputs(count: float) -> dict[str, np.ndarray]:
    """TF Object Detection API style: normalized yxyx boxes, float class ids, scores, count."""
    boxes = np.array([[27, 22, 37, 42], [40, 0, 48, 16], [0, 0, 64, 64]], np.float32) / 64
    return {"boxes": boxes, "classes": np.array([2, 0, 1], np.float32),
            "scores": np.array([0.9, 0.6, 0.95], np.float32), "count": np.array(count, np.float32)}


TF_OD = BoxesScoresDecoder(classes_output="classes", count_output="count", box_format="yxyx",
                           boxes_normalized=True, apply_nms=False)


def test_tf_od_style_count_limits_the_rows_read() -> None:
    out = TF_OD.decode(tf_od_outputs(2), LETTERBOX, LABELS)  # the 0.95 row lies beyond count
    assert [(d.label, d.class_id, round(d.score, 2)) for d in out.detections] == [("bike", 2, 0.9),
                                                                                   ("person", 0, 0.6)]
    assert out.detections[0].box == pytest.approx(EXPECTED)
    assert out.detections[1].box == pytest.approx((0.0, 48.0, 32.0, 64.0))
    everything = TF_OD.decode(tf_od_outputs(3), LETTERBOX, LABELS)
    assert [d.label for d in everything.detections] == ["car", "bike", "person"]
    assert TF_OD.decode(tf_od_outputs(0), LETTERBOX, LABELS).detections == []


def test_class_id_offset_maps_one_based_ids() -> None:
    out = TF_OD.model_copy(update={"class_id_offset": -1}).decode(tf_od_outputs(1), LETTERBOX, LABELS)
    assert (out.detections[0].label, out.detections[0].class_id) == ("car", 1)


@pytest.mark.parametrize(("box_format", "box"), [
    ("xyxy", [22, 27, 42, 37]), ("yxyx", [27, 22, 37, 42]), ("cxcywh", [32, 32, 20, 10]),
])
def test_box_formats_in_input_pixels(box_format: str, box: list[float]) -> None:
    outputs = {"boxes": np.array([box], np.float32), "scores": np.array([0.8], np.float32)}
    out = BoxesScoresDecoder(box_format=box_format).decode(outputs, LETTERBOX, LABELS)
    assert out.detections[0].box == pytest.approx(EXPECTED)
    assert out.detections[0].label == "person"  # no classes output: class 0


def test_score_matrix_takes_the_best_class_per_box() -> None:
    outputs = {"boxes": np.array([[22, 27, 42, 37], [0, 16, 10, 26]], np.float32),
               "scores": np.array([[0.1, 0.2, 0.7], [0.3, 0.4, 0.2]], np.float32)}
    out = BoxesScoresDecoder(score_threshold=0.35).decode(outputs, LETTERBOX, LABELS)
    assert [(d.label, round(d.score, 2)) for d in out.detections] == [("bike", 0.7), ("car", 0.4)]


def test_nms_per_class_agnostic_and_off() -> None:
    outputs = {"boxes": np.array([[10, 20, 30, 40], [11, 20, 31, 40], [10, 21, 30, 41]], np.float32),
               "scores": np.array([0.9, 0.8, 0.7], np.float32),
               "classes": np.array([0, 1, 0], np.float32)}
    base = BoxesScoresDecoder(classes_output="classes")
    assert [d.label for d in base.decode(outputs, LETTERBOX, LABELS).detections] == ["person", "car"]
    agnostic = base.model_copy(update={"agnostic_nms": True})
    assert [d.label for d in agnostic.decode(outputs, LETTERBOX, LABELS).detections] == ["person"]
    off = base.model_copy(update={"apply_nms": False, "max_detections": 2})
    assert [d.score for d in off.decode(outputs, LETTERBOX, LABELS).detections] == pytest.approx([0.9, 0.8])


def test_mismatched_outputs_are_typed_errors() -> None:
    with pytest.raises(ModelError, match="boxes output has 2 rows but scores has 3"):
        BoxesScoresDecoder().decode({"boxes": np.zeros((2, 4)), "scores": np.zeros(3)}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match=r"expected \[N, 4\]"):
        BoxesScoresDecoder().decode({"boxes": np.zeros((2, 5)), "scores": np.zeros(2)}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="'classes' is not among"):
        BoxesScoresDecoder(classes_output="classes").decode(
            {"boxes": np.zeros((2, 4)), "scores": np.zeros(2)}, LETTERBOX, LABELS)


def test_manifest_block_validates_into_a_working_decoder() -> None:
    decoder = TypeAdapter(DecoderConfig).validate_python(
        {"type": "boxes_scores", "box_format": "yxyx", "boxes_normalized": True, "classes_output": "classes",
         "count_output": "count", "apply_nms": False, "class_id_offset": 0})
    assert isinstance(decoder, BoxesScoresDecoder)
    assert decoder.decode(tf_od_outputs(1), LETTERBOX, LABELS).detections[0].box == pytest.approx(EXPECTED)


def test_tf_od_graph_through_onnxruntime(tmp_path: Path) -> None:
    model = make_constant_outputs_graph(tmp_path / "ssd_tf.onnx", tf_od_outputs(2))
    outputs = run_frame(model)
    assert list(outputs) == ["boxes", "classes", "scores", "count"]
    assert outputs["count"].shape == ()
    out = TF_OD.decode(outputs, LETTERBOX, LABELS)
    assert [d.label for d in out.detections] == ["bike", "person"]
    assert out.detections[0].box == pytest.approx(EXPECTED)
