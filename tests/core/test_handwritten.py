"""The bench's hand-written loop is a fair yardstick: on the same frames it gives what edgeinfer gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.backends import BackendOptions
from edgeinfer.core.demo import SAMPLE_IMAGES, sample_image
from edgeinfer.core.handwritten import hand_written_step
from edgeinfer.core.model import LoadedModel, load_model, resolve_package
from edgeinfer.core.modelpkg.importer import import_model

from .colour_model import frame, make_colour_model
from .graphs import make_segmenter_graph


def edgeinfer_frame(model: LoadedModel, img: np.ndarray):
    tensor, transform = model.preprocessor(img)
    return model.decoder.decode(model.infer(tensor[None])[0], transform, model.labels)


@pytest.mark.parametrize("which", ["onnx", "tflite"])
def test_hand_written_faces_match_edgeinfer(demo_pkgs: tuple[Path, Path], which: str) -> None:
    model = load_model(resolve_package(demo_pkgs[0] if which == "onnx" else demo_pkgs[1]), BackendOptions())
    step = hand_written_step(model)
    assert step is not None
    faces = 0
    try:
        for name in SAMPLE_IMAGES:
            img = sample_image(name)
            hand, ours = step(img), edgeinfer_frame(model, img).detections
            assert len(hand) == len(ours), name
            for (class_id, score, box, keypoints), det in zip(hand, ours, strict=True):
                assert class_id == det.class_id and score == pytest.approx(det.score, abs=1e-6)
                assert np.allclose(box, det.box, atol=1e-3) and np.allclose(keypoints, det.keypoints, atol=1e-3)
            faces += len(ours)
    finally:
        model.close()
    assert faces >= 1  # the astronaut, at least: the comparison saw real detections


def test_hand_written_classes_match_edgeinfer(tmp_path: Path) -> None:
    model = load_model(resolve_package(make_colour_model(tmp_path)), BackendOptions())
    step = hand_written_step(model)
    assert step is not None
    try:
        for colour in ("red", "green", "blue"):
            img = frame(colour)
            ((class_id, score),) = step(img)
            (ours,) = edgeinfer_frame(model, img).classes
            assert model.labels[class_id] == colour == ours.label and score == pytest.approx(ours.score, abs=1e-6)
    finally:
        model.close()


def test_no_hand_written_loop_for_other_decoders(tmp_path: Path) -> None:
    """A segmentation model has no hand-written decoder: the bench reports none rather than a wrong one."""
    graph = make_segmenter_graph(tmp_path / "seg.onnx", np.eye(3, dtype=np.float32))
    pkg = import_model(graph, task="segmentation", out_dir=tmp_path / "pkg", labels=["b", "g", "r"])
    model = load_model(resolve_package(pkg), BackendOptions())
    try:
        assert model.manifest.task == "segmentation" and hand_written_step(model) is None
    finally:
        model.close()
