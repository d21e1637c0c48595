"""TensorRT backend against fake ``tensorrt`` and CUDA runtime modules (neither exists on this machine).

The fake engine computes ``out = in * k`` through the device buffers the backend binds, so these tests
prove the plumbing: copies in and out, named tensors in any order, dtype mapping, dynamic shapes, buffer
reuse and release. The ``gpu`` test repeats the plumbing with the real cuda-python on a real GPU.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeinfer.core.backends import open_backend
from edgeinfer.core.backends.base import BackendOptions, TensorSpec
from edgeinfer.core.backends.tensorrt import META_SUFFIX, TensorRtBackend
from edgeinfer.core.errors import BackendError, ModelError

from .conftest import FakeGpu, install_cuda
from .fakes import FakeCudart, FakeTensorRT, engine_bytes


def tensor(name: str, mode: str, shape: list[int], dtype: str = "FLOAT") -> dict[str, Any]:
    return {"name": name, "mode": mode, "shape": shape, "dtype": dtype}


def write_engine(folder: Path, tensors: list[dict[str, Any]], compute: dict[str, list[Any]],
                 profiles: dict[str, list[list[int]]] | None = None, meta: dict[str, Any] | None = None,
                 version: str = "10.3.0") -> Path:
    path = folder / "model.engine"
    path.write_bytes(engine_bytes(tensors, compute, profiles, version))
    if meta is not None:
        Path(str(path) + META_SUFFIX).write_text(json.dumps(meta))
    return path


@pytest.fixture
def doubler(tmp_path: Path) -> Path:
    return write_engine(tmp_path, [tensor("image", "INPUT", [1, 3, 4, 4]), tensor("out", "OUTPUT", [1, 3, 4, 4])],
                        {"out": ["image", 2.0]}, meta={"precision": "fp16", "tensorrt": "10.3.0"})


@pytest.fixture
def dynamic(tmp_path: Path) -> Path:
    return write_engine(tmp_path, [tensor("x", "INPUT", [-1, 8]), tensor("y", "OUTPUT", [-1, 8])], {"y": ["x", 2.0]},
                        profiles={"x": [[1, 8], [4, 8], [8, 8]]})


# ------------------------------------------------------------------------------------ not there
def test_missing_tensorrt_says_what_to_install(doubler: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError
    for make in (lambda: TensorRtBackend(doubler, BackendOptions()), lambda: open_backend(doubler, "tensorrt")):
        with pytest.raises(BackendError) as err:
            make()
        text = str(err.value)
        assert text.startswith("TensorRT is not installed")
        assert "pip install 'edgeinfer[tensorrt]'" in text and "JetPack" in text and "--backend onnxruntime" in text


def test_tensorrt_older_than_10_is_refused(doubler: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(FakeCudart(), version="8.6.1"))
    install_cuda(monkeypatch, FakeCudart())
    with pytest.raises(BackendError, match=r"TensorRT 8\.6\.1 is too old"):
        TensorRtBackend(doubler, BackendOptions())


def test_missing_cuda_python_says_what_to_install(doubler: Path, fake_gpu: FakeGpu,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendError, match="cuda-python is not installed"):
        TensorRtBackend(doubler, BackendOptions())


def test_older_cuda_python_layout_works(doubler: Path, fake_gpu: FakeGpu, monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = FakeCudart()
    fake_gpu.trt.cudart = legacy
    install_cuda(monkeypatch, legacy, legacy=True)
    with TensorRtBackend(doubler, BackendOptions()) as b:
        x = np.ones((1, 3, 4, 4), np.float32)
        np.testing.assert_array_equal(b.run({"image": x})["out"], 2 * x)
        assert legacy.malloc_calls == 2


# ------------------------------------------------------------------------------------ bad engine
def test_engine_that_does_not_deserialize_is_a_model_error(tmp_path: Path, fake_gpu: FakeGpu,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    junk = tmp_path / "junk.engine"
    junk.write_bytes(b"\x00" * 64)
    with caplog.at_level(logging.ERROR), pytest.raises(ModelError) as err:
        TensorRtBackend(junk, BackendOptions())
    assert "cannot load junk.engine" in str(err.value) and "edgeinfer model optimize" in str(err.value)
    assert any("tensorrt: IRuntime::deserializeCudaEngine" in r.getMessage() for r in caplog.records)


def test_engine_from_another_tensorrt_names_both_versions(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    old = write_engine(tmp_path, [tensor("x", "INPUT", [1]), tensor("y", "OUTPUT", [1])], {"y": ["x", 1.0]},
                       meta={"precision": "fp16", "tensorrt": "10.0.1"}, version="10.0.1")
    expected = r"TensorRT 10\.3\.0 cannot load model\.engine \(built with TensorRT 10\.0\.1\)"
    with pytest.raises(ModelError, match=expected):
        TensorRtBackend(old, BackendOptions())


def test_missing_engine_file(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    with pytest.raises(ModelError, match="cannot read engine"):
        TensorRtBackend(tmp_path / "none.engine", BackendOptions())


def test_unknown_device_and_gpu_are_refused(doubler: Path, fake_gpu: FakeGpu) -> None:
    with pytest.raises(BackendError, match="tensorrt has no device 'cpu'"):
        TensorRtBackend(doubler, BackendOptions(device="cpu"))
    with pytest.raises(BackendError, match="CUDA failed to select GPU 3: cudaErrorInvalidDevice"):
        TensorRtBackend(doubler, BackendOptions(gpu_id=3))


# ------------------------------------------------------------------------------------------ runs
def test_run_goes_through_device_memory(doubler: Path, fake_gpu: FakeGpu) -> None:
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)
    with open_backend(doubler, "tensorrt") as b:
        assert isinstance(b, TensorRtBackend)
        assert b.inputs == [TensorSpec("image", (1, 3, 4, 4), "float32")]
        assert b.outputs == [TensorSpec("out", (1, 3, 4, 4), "float32")]
        assert (b.info.device, b.info.precision, b.info.active, b.info.degraded) == ("cuda:0", "fp16", ["tensorrt"],
                                                                                     False)
        out = b.run({"image": x})
    np.testing.assert_array_equal(out["out"], 2 * x)
    assert fake_gpu.cudart.device == 0
    assert fake_gpu.trt.engines[0].contexts[0].executions == 1


def test_named_tensors_in_any_order_and_dtypes(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    path = write_engine(tmp_path, [tensor("scores", "OUTPUT", [2, 5]), tensor("image", "INPUT", [2, 5], "HALF"),
                                   tensor("boxes", "OUTPUT", [2, 3], "INT32"), tensor("mask", "INPUT", [2, 3], "INT8")],
                        {"scores": ["image", 2.0], "boxes": ["mask", 3.0]})
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 5))  # float64: cast to the engine's float16
    mask = rng.integers(-40, 40, (2, 3)).astype(np.int8)
    with TensorRtBackend(path, BackendOptions()) as b:
        assert [(s.name, s.dtype) for s in b.inputs] == [("image", "float16"), ("mask", "int8")]
        assert [(s.name, s.dtype) for s in b.outputs] == [("scores", "float32"), ("boxes", "int32")]
        assert b.info.precision == "unknown"  # no sidecar from build_engine
        out = b.run({"mask": mask, "image": image})
        with pytest.raises(ModelError, match="'mask' takes int8, got float32"):
            b.run({"mask": mask.astype(np.float32), "image": image})
        with pytest.raises(ModelError, match="missing input 'mask'"):
            b.run({"image": image})
    assert out["scores"].dtype == np.float32 and out["boxes"].dtype == np.int32
    np.testing.assert_array_equal(out["scores"], image.astype(np.float16).astype(np.float32) * 2)
    np.testing.assert_array_equal(out["boxes"], mask.astype(np.int32) * 3)


def test_static_engine_refuses_another_shape(doubler: Path, fake_gpu: FakeGpu) -> None:
    with TensorRtBackend(doubler, BackendOptions()) as b, pytest.raises(ModelError, match="does not match"):
        b.run({"image": np.zeros((2, 3, 4, 4), np.float32)})


def test_dynamic_batch_reuses_buffers_and_grows_them(dynamic: Path, fake_gpu: FakeGpu) -> None:
    cudart = fake_gpu.cudart
    rng = np.random.default_rng(2)
    with TensorRtBackend(dynamic, BackendOptions()) as b:
        assert b.inputs[0].shape == (None, 8)
        for batch, mallocs, frees in ((2, 2, 0), (2, 2, 0), (1, 2, 0), (4, 4, 2), (3, 4, 2)):
            x = rng.normal(size=(batch, 8)).astype(np.float32)
            y = b.run({"x": x})["y"]
            assert y.shape == (batch, 8)
            np.testing.assert_array_equal(y, 2 * x)
            assert (cudart.malloc_calls, cudart.free_calls) == (mallocs, frees)
        assert cudart.live_bytes == 2 * 4 * 8 * 4
        with pytest.raises(ModelError, match="outside what this engine was built for"):
            b.run({"x": np.zeros((9, 8), np.float32)})
    assert cudart.allocations == {} and cudart.streams == set()
    b.close()  # twice is harmless


def test_out_of_gpu_memory_is_a_clear_error(dynamic: Path, fake_gpu: FakeGpu) -> None:
    fake_gpu.cudart.memory_limit = 100
    with TensorRtBackend(dynamic, BackendOptions()) as b:
        b.run({"x": np.zeros((1, 8), np.float32)})  # 2 x 32 bytes fit
        with pytest.raises(BackendError, match="CUDA failed to allocate 128 bytes for 'x': cudaErrorMemoryAllocation"):
            b.run({"x": np.zeros((4, 8), np.float32)})


# ------------------------------------------------------------------------------------------- GPU
@pytest.fixture
def real_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            pytest.skip("cuda-python is not installed")
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess or count < 1:
        pytest.skip("no CUDA GPU")
    return cudart


@pytest.mark.gpu
def test_device_buffers_with_the_real_cuda_runtime(dynamic: Path, real_cudart: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(real_cudart))  # TensorRT is still not on the box
    x = np.arange(40, dtype=np.float32).reshape(5, 8)
    with TensorRtBackend(dynamic, BackendOptions()) as b:
        np.testing.assert_array_equal(b.run({"x": x})["y"], 2 * x)
        np.testing.assert_array_equal(b.run({"x": x[:2]})["y"], 2 * x[:2])
