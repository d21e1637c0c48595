"""Classification decoder: activations, top-k order, threshold, shapes, and ONNX Runtime classifiers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.errors import ModelError
from edgeinfer.core.geometry import Transform
from edgeinfer.core.tasks import ClassificationDecoder

from .graphs import make_classifier_graph, run_frame

LABELS = ["red", "green", "blue", "grey"]
IDENTITY = Transform.stretch(32, 32, 32, 32)


def decode(decoder: ClassificationDecoder, values: list[float] | np.ndarray) -> list[tuple[str, float]]:
    out = decoder.decode({"logits": np.asarray(values, np.float32)}, IDENTITY, LABELS)
    return [(c.label, c.score) for c in out.classes]


def test_softmax_top_k_sorted_descending() -> None:
    logits = np.array([1.0, 3.0, 2.0, 0.0])
    e = np.exp(logits - 3.0)
    probs = e / e.sum()
    got = decode(ClassificationDecoder(top_k=3), logits)
    assert [label for label, _ in got] == ["green", "blue", "red"]
    assert [score for _, score in got] == pytest.approx(list(probs[[1, 2, 0]]), rel=1e-6)


def test_sigmoid_scores_each_class_alone_and_threshold_drops() -> None:
    got = decode(ClassificationDecoder(activation="sigmoid", score_threshold=0.5), [0.0, 2.0, -2.0, 4.0])
    assert [label for label, _ in got] == ["grey", "green", "red"]  # sigmoid(0) = 0.5 is kept
    assert [score for _, score in got] == pytest.approx([1 / (1 + np.exp(-4)), 1 / (1 + np.exp(-2)), 0.5])


def test_none_passes_probabilities_through_and_accepts_a_leading_axis() -> None:
    got = decode(ClassificationDecoder(activation="none", top_k=2), [[0.1, 0.2, 0.6, 0.1]])
    assert got == [("blue", pytest.approx(0.6)), ("green", pytest.approx(0.2))]


def test_softmax_threshold_then_top_k() -> None:
    got = decode(ClassificationDecoder(top_k=4, score_threshold=0.2), [2.0, 2.0, 0.0, -5.0])
    assert [label for label, _ in got] == ["red", "green"]  # ties keep model order


def test_bad_shapes_and_label_counts_are_typed_errors() -> None:
    with pytest.raises(ModelError, match=r"shape \[2, 4\], expected \[C\]"):
        decode(ClassificationDecoder(), np.zeros((2, 4)))
    with pytest.raises(ModelError, match="5 classes but the manifest lists 4 labels"):
        decode(ClassificationDecoder(), np.zeros(5))


# -- through real ONNX Runtime sessions ------------------------------------------------------------

def colour_image(r: float, g: float, b: float, size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size), v, np.float32) for v in (r, g, b)])


# logits: 4 * the channel mean for red/green/blue; "grey" = 2 * the sum of all three (wins on grey images)
WEIGHTS = np.array([[4, 0, 0], [0, 4, 0], [0, 0, 4], [2, 2, 2]], np.float32)


@pytest.mark.parametrize(("image", "top"), [
    (colour_image(0.9, 0.1, 0.1), "red"), (colour_image(0.1, 0.2, 0.8), "blue"),
    (colour_image(0.5, 0.5, 0.5), "grey"),
])
def test_classifier_graph_follows_its_input(tmp_path: Path, image: np.ndarray, top: str) -> None:
    model = make_classifier_graph(tmp_path / "cls.onnx", WEIGHTS)
    outputs = run_frame(model, image)
    assert outputs["logits"].shape == (4,)
    got = ClassificationDecoder(top_k=1).decode(outputs, IDENTITY, LABELS).classes
    assert [c.label for c in got] == [top]


def test_in_graph_softmax_with_activation_none_matches_decoder_softmax(tmp_path: Path) -> None:
    image = colour_image(0.2, 0.7, 0.4)
    logits = run_frame(make_classifier_graph(tmp_path / "logits.onnx", WEIGHTS), image)
    probs = run_frame(make_classifier_graph(tmp_path / "probs.onnx", WEIGHTS, softmax=True), image)
    a = ClassificationDecoder(top_k=4).decode(logits, IDENTITY, LABELS).classes
    b = ClassificationDecoder(top_k=4, activation="none").decode(probs, IDENTITY, LABELS).classes
    assert [c.label for c in a] == [c.label for c in b] == ["green", "grey", "blue", "red"]
    assert [c.score for c in a] == pytest.approx([c.score for c in b], abs=1e-6)
    assert sum(c.score for c in b) == pytest.approx(1.0, abs=1e-5)
