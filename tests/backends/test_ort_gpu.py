"""Why onnxruntime's CUDA/TensorRT provider did not start, in one line with the fix.

The dynamic loader is real: a provider library it cannot load gives its own message. The real
onnxruntime-gpu wheel on this CPU-only host was checked by hand (docs/backends.md)."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import onnxruntime

from edgeinfer.core.backends import BackendOptions
from edgeinfer.core.backends.onnxruntime import OnnxRuntimeBackend
from edgeinfer.core.backends.ort_gpu import load_error, preload_nvidia_libraries, why_not_started, with_fix


def fake_ort(tmp_path: Path, lib_bytes: bytes | None) -> types.SimpleNamespace:
    """An onnxruntime-like package whose CUDA provider library is ``lib_bytes`` (None: absent)."""
    capi = tmp_path / "fakeort" / "capi"
    capi.mkdir(parents=True)
    if lib_bytes is not None:
        (capi / "libonnxruntime_providers_cuda.so").write_bytes(lib_bytes)
    return types.SimpleNamespace(__file__=str(capi.parent / "__init__.py"), __name__="fakeort")


def test_a_library_that_loads_has_no_load_error() -> None:
    shared = Path(onnxruntime.__file__).parent / "capi" / "libonnxruntime_providers_shared.so"
    assert shared.exists() and load_error(shared) is None


def test_the_loaders_own_message_and_the_fix(tmp_path: Path) -> None:
    line = why_not_started(fake_ort(tmp_path, b"not an ELF file\n" * 256), "CUDAExecutionProvider")
    assert "libonnxruntime_providers_cuda.so" in line and "header" in line  # the loader: invalid ELF header
    assert "pip install 'onnxruntime-gpu[cuda,cudnn]'" in line and "LD_LIBRARY_PATH" in line


def test_a_build_without_the_provider_library_says_so(tmp_path: Path) -> None:
    line = why_not_started(fake_ort(tmp_path, None), "CUDAExecutionProvider")
    assert line.startswith("libonnxruntime_providers_cuda.so is not part of this onnxruntime build")


def test_preloads_only_for_a_gpu_provider_with_nvidia_wheels_installed() -> None:
    calls: list[int] = []
    ort = types.SimpleNamespace(preload_dlls=lambda: calls.append(1))
    assert not preload_nvidia_libraries(ort, ["CPUExecutionProvider"]) and calls == []
    wheels = importlib.util.find_spec("nvidia") is not None  # none in the test env; a CUDA dev box may have them
    assert preload_nvidia_libraries(ort, ["CUDAExecutionProvider"]) is wheels and calls == [1] * wheels


def test_cuda_asked_of_the_cpu_build_runs_degraded_and_says_why(demo_pkgs: tuple[Path, Path]) -> None:
    backend = OnnxRuntimeBackend(demo_pkgs[0] / "model.onnx", BackendOptions(device="cuda"))
    info = backend.info
    assert info.device == "cpu" and info.active == ["CPUExecutionProvider"] and info.degraded
    assert "CUDAExecutionProvider was requested but this onnxruntime build lacks it" in info.reason
    backend.close()


def test_each_missing_library_gets_its_own_fix() -> None:
    missing = "cannot open shared object file: No such file or directory"
    driver = with_fix(f"libcuda.so.1: {missing}", "13.0")  # NVIDIA's wheels preloaded, no GPU driver
    assert "install the NVIDIA driver" in driver and "pip install 'onnxruntime" not in driver
    assert "install CUDA 13 and cuDNN 9" in with_fix(f"libcublasLt.so.13: {missing}", "13.0")
    assert "install TensorRT" in with_fix(f"libnvinfer.so.10: {missing}", "13.0")
