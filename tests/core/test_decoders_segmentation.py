"""Segmentation decoder (layouts, activations, padding crop, areas) and the mask overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.errors import ConfigError, FrameError, ModelError
from edgeinfer.core.geometry import Transform
from edgeinfer.core.tasks import SegmentationDecoder
from edgeinfer.core.tasks.palette import class_colour, palette
from edgeinfer.core.tasks.segmentation import overlay

from .graphs import make_segmenter_graph, run_frame

LABELS = ["background", "person"]
# A 16x8 frame letterboxed into an 8x8 input: scale 0.5, rows 0-1 and 6-7 are padding.
LETTERBOX = Transform.letterbox(16, 8, 8, 8)
RIGHT_HALF = np.zeros((8, 16), np.int32)
RIGHT_HALF[:, 8:] = 1


def two_class_chw() -> np.ndarray:
    """``[2, 8, 8]``: person on the right half of the valid rows, and all over the padding rows."""
    maps = np.zeros((2, 8, 8), np.float32)
    maps[0] = 0.5
    maps[1, :, 4:] = 1.0
    maps[1, :2] = maps[1, 6:] = 1.0  # padding: must be cropped away, or areas come out wrong
    return maps


def test_chw_argmax_crops_padding_and_resizes_to_the_frame() -> None:
    seg = SegmentationDecoder().decode({"out": two_class_chw()}, LETTERBOX, LABELS).segmentation
    assert seg is not None
    assert seg.mask.dtype == np.int32
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF)
    assert seg.areas == {"background": 0.5, "person": 0.5}


def test_hwc_layout_gives_the_same_mask() -> None:
    hwc = two_class_chw().transpose(1, 2, 0).copy()
    seg = SegmentationDecoder(layout="HWC").decode({"out": hwc}, LETTERBOX, LABELS).segmentation
    assert seg is not None
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF)


def test_low_resolution_output_is_scaled_to_the_input_first() -> None:
    maps = np.zeros((2, 4, 4), np.float32)  # a quarter-size [2, 4, 4] map of the 8x8 input
    maps[1, :, 2:] = 1.0
    maps[1, 0] = maps[1, 3] = 1.0  # padding rows at this resolution
    seg = SegmentationDecoder().decode({"out": maps}, LETTERBOX, LABELS).segmentation
    assert seg is not None
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF)


def one_channel(value: float) -> np.ndarray:
    fg = np.full((8, 8), -3.0, np.float32)
    fg[:, 4:] = value
    return fg


@pytest.mark.parametrize("shape", [(8, 8), (1, 8, 8), (1, 1, 8, 8)])
def test_sigmoid_single_channel_foreground(shape: tuple[int, ...]) -> None:
    logits = one_channel(0.3).reshape(shape)  # sigmoid(0.3) = 0.574 >= 0.5
    seg = SegmentationDecoder(activation="sigmoid").decode({"out": logits}, LETTERBOX, LABELS).segmentation
    assert seg is not None
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF)


def test_threshold_reads_probabilities_as_they_are() -> None:
    probs = one_channel(0.3)
    below = SegmentationDecoder(activation="threshold").decode({"o": probs}, LETTERBOX, LABELS).segmentation
    at = SegmentationDecoder(activation="threshold", threshold=0.3).decode(
        {"o": probs}, LETTERBOX, LABELS).segmentation
    assert below is not None and at is not None
    assert below.areas == {"background": 1.0, "person": 0.0}
    np.testing.assert_array_equal(at.mask, RIGHT_HALF)


def test_areas_list_absent_labels_and_unlabelled_ids() -> None:
    maps = np.zeros((4, 8, 8), np.float32)
    maps[3, :, :4] = 1.0  # class 3 on the left half; the labels stop at 2
    seg = SegmentationDecoder().decode({"o": maps}, LETTERBOX, ["background", "person", "car"]).segmentation
    assert seg is not None
    assert seg.areas == {"background": 0.5, "person": 0.0, "car": 0.0, "3": 0.5}


def test_activation_and_channel_count_mismatch_are_typed_errors() -> None:
    with pytest.raises(ModelError, match="argmax needs two or more"):
        SegmentationDecoder().decode({"o": np.zeros((1, 8, 8))}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="reads one foreground channel, the output has 3"):
        SegmentationDecoder(activation="sigmoid").decode({"o": np.zeros((3, 8, 8))}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="expected"):
        SegmentationDecoder().decode({"o": np.zeros((2, 2, 8, 8))}, LETTERBOX, LABELS)


# -- overlay --------------------------------------------------------------------------------------

def test_overlay_blends_class_colours_and_leaves_background() -> None:
    image = np.full((4, 6, 3), 100, np.uint8)
    mask = np.zeros((4, 6), np.int32)
    mask[0, 0], mask[1, 1] = 1, 2
    out = overlay(image, mask, alpha=0.5)
    assert out is not image and image[0, 0].tolist() == [100, 100, 100]  # input untouched
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    expected = np.rint(0.5 * 100 + 0.5 * np.array(class_colour(1), np.float32))
    assert out[0, 0].tolist() == expected.tolist()
    assert out[0, 0].tolist() != out[1, 1].tolist()
    np.testing.assert_array_equal(overlay(image, mask, alpha=1.0)[1, 1], class_colour(2))
    np.testing.assert_array_equal(overlay(image, mask, alpha=0.0), image)


def test_palette_is_deterministic_and_distinct() -> None:
    assert palette(20).tolist() == palette(20).tolist()
    assert len({tuple(c) for c in palette(20).tolist()}) == 20
    assert tuple(palette(3)[2].tolist()) == class_colour(2)


def test_overlay_rejects_bad_input() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(FrameError, match="does not match the frame"):
        overlay(image, np.zeros((4, 5), np.int32))
    with pytest.raises(ConfigError, match="alpha"):
        overlay(image, np.zeros((4, 6), np.int32), alpha=1.5)


# -- through real ONNX Runtime sessions ------------------------------------------------------------

def red_blue_image() -> np.ndarray:
    """``[3, 8, 8]``: red left, blue right in the valid rows; green padding rows (to be cropped)."""
    img = np.zeros((3, 8, 8), np.float32)
    img[0, :, :4] = 1.0
    img[2, :, 4:] = 1.0
    img[:, :2] = img[:, 6:] = 0.0
    img[1, :2] = img[1, 6:] = 1.0
    return img


@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_segmenter_graph_through_onnxruntime(tmp_path: Path, layout: str) -> None:
    model = make_segmenter_graph(tmp_path / "seg.onnx", np.eye(3), input_hw=(8, 8), layout=layout)
    outputs = run_frame(model, red_blue_image())
    assert outputs["scores"].shape == ((3, 8, 8) if layout == "CHW" else (8, 8, 3))
    seg = SegmentationDecoder(layout=layout).decode(outputs, LETTERBOX, ["red", "green", "blue"]).segmentation
    assert seg is not None
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF * 2)
    assert seg.areas == {"red": 0.5, "green": 0.0, "blue": 0.5}


def test_single_channel_segmenter_graph_through_onnxruntime(tmp_path: Path) -> None:
    # foreground logit = 4 * (blue - red): positive on the right half only
    model = make_segmenter_graph(tmp_path / "fg.onnx", np.array([[-4.0, 0.0, 4.0]]), input_hw=(8, 8))
    seg = SegmentationDecoder(activation="sigmoid").decode(
        run_frame(model, red_blue_image()), LETTERBOX, LABELS).segmentation
    assert seg is not None
    np.testing.assert_array_equal(seg.mask, RIGHT_HALF)
    assert seg.areas == {"background": 0.5, "person": 0.5}
