"""The real pretrained BlazeFace full-range detector, in both formats, on real sample images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeinfer.core.backends import BackendOptions
from edgeinfer.core.demo import sample_image
from edgeinfer.core.model import LoadedModel, load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.types import Detection

pytest.importorskip("ai_edge_litert", reason="LiteRT is part of the [dev] install")


@pytest.fixture(scope="module")
def models(demo_pkgs: tuple[Path, Path]) -> dict[str, LoadedModel]:
    onnx_pkg, tfl_pkg = demo_pkgs
    out = {"onnx": load_model(load_package(onnx_pkg), BackendOptions(device="cpu")),
           "tflite": load_model(load_package(tfl_pkg), BackendOptions(device="cpu"))}
    yield out
    for m in out.values():
        m.close()


def detect(model: LoadedModel, name: str) -> tuple[list[Detection], dict[str, np.ndarray]]:
    tensor, transform = model.preprocessor(sample_image(name))
    outputs = model.infer(tensor[None])[0]
    return model.decoder.decode(outputs, transform, model.labels).detections, outputs


def test_backends_are_what_they_claim(models: dict[str, LoadedModel]) -> None:
    assert models["onnx"].backend.info.backend == "onnxruntime"
    assert models["tflite"].backend.info.backend == "litert"
    assert not models["onnx"].backend.info.degraded and not models["tflite"].backend.info.degraded


def test_astronaut_has_exactly_one_face_around_the_face(models: dict[str, LoadedModel]) -> None:
    dets, _ = detect(models["onnx"], "astronaut")
    assert len(dets) == 1
    face = dets[0]
    assert face.label == "face" and face.score > 0.8
    x1, y1, x2, y2 = face.box
    # Eileen Collins' face in the 512x512 image: roughly x 175..280, y 65..175
    assert 150 < x1 < 200 and 250 < x2 < 305 and 40 < y1 < 95 and 150 < y2 < 200
    assert len(face.keypoints or []) == 6
    left_eye, right_eye = face.keypoints[0], face.keypoints[1]
    assert x1 < left_eye[0] < right_eye[0] < x2 and y1 < left_eye[1] < y2


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_no_face_in_coffee_or_cat(models: dict[str, LoadedModel], name: str) -> None:
    dets, _ = detect(models["onnx"], name)
    assert dets == []


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera", "rocket"])
def test_onnxruntime_and_litert_agree(models: dict[str, LoadedModel], name: str) -> None:
    d_onnx, raw_onnx = detect(models["onnx"], name)
    d_tfl, raw_tfl = detect(models["tflite"], name)
    # raw face scores agree to 1e-3 everywhere (sigmoid of the logits)
    s_onnx = 1 / (1 + np.exp(-raw_onnx["reshaped_classifier_face_4"].astype(np.float64)))
    s_tfl = 1 / (1 + np.exp(-raw_tfl["reshaped_classifier_face_4"].astype(np.float64)))
    assert np.max(np.abs(s_onnx - s_tfl)) < 1e-3
    assert len(d_onnx) == len(d_tfl)
    for a, b in zip(d_onnx, d_tfl, strict=True):
        assert abs(a.score - b.score) < 1e-3
        assert np.allclose(a.box, b.box, atol=0.5)


def test_threshold_override_changes_decisions(demo_pkgs: tuple[Path, Path]) -> None:
    m = load_model(load_package(demo_pkgs[0]), BackendOptions(device="cpu"), score_threshold=0.1)
    try:
        dets, _ = detect(m, "coffee")  # the cup's rim scores ~0.12 as a face: visible at 0.1
        assert dets and all(d.score >= 0.1 for d in dets)
    finally:
        m.close()
