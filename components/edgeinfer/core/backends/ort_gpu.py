"""onnxruntime's CUDA and TensorRT providers: find pip-installed CUDA libraries, and say why a provider
did not start.

onnxruntime-gpu loads a provider's library (``capi/libonnxruntime_providers_cuda.so``) only when a
session asks for it, and that library needs the CUDA, cuDNN (and for TensorRT, TensorRT) major
versions the wheel was built for: onnxruntime-gpu 1.31 wants CUDA 13 and cuDNN 9. When they come
from NVIDIA's wheels (``pip install 'onnxruntime-gpu[cuda,cudnn]'``) the dynamic loader does not look
in site-packages: ``onnxruntime.preload_dlls()`` loads them first. JetPack and CUDA container images
put them on the loader's path, and there is nothing to preload.

When a provider still does not start, onnxruntime falls back to the next one and only logs why. Loading
the provider's library ourselves gets the loader's own message (the library that is missing), which
is the line a user needs, with the fix.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PROVIDER_LIBS = {"CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
                 "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so"}


def preload_nvidia_libraries(ort: Any, providers: Iterable[str]) -> bool:
    """Load CUDA/cuDNN from NVIDIA's pip wheels when a GPU provider is asked for and they are installed."""
    if not any(p in PROVIDER_LIBS for p in providers) or not hasattr(ort, "preload_dlls"):
        return False
    if importlib.util.find_spec("nvidia") is None:  # no NVIDIA wheels: the libraries come from the system
        return False
    ort.preload_dlls()
    return True


def load_error(library: Path) -> str | None:
    """Why the dynamic loader cannot load ``library`` (its own message), or None when it loads."""
    if not library.exists():
        return f"{library.name} is not part of this onnxruntime build"
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return str(exc)
    return None


def why_not_started(ort: Any, provider: str) -> str:
    """One line: the cause of ``provider`` not starting, and what to do about it."""
    lib = PROVIDER_LIBS.get(provider)
    if lib is None:  # OpenVINO and others: onnxruntime's log says why
        return "no usable device for it (onnxruntime's log above says why)"
    cause = load_error(Path(ort.__file__).parent / "capi" / lib)
    if cause is None:
        return "its libraries load, so no usable GPU or driver was found -> check nvidia-smi and the driver"
    return with_fix(cause, _cuda_version(ort))


def with_fix(cause: str, cuda_version: str | None) -> str:
    """The loader's message, and what installs the library it names."""
    if "libcuda.so" in cause:  # the driver's library: no pip package brings it
        return f"{cause} -> install the NVIDIA driver (or run where a GPU is: JetPack, --gpus all)"
    if "nvinfer" in cause:
        return f"{cause} -> install TensorRT for this CUDA (JetPack, or pip install tensorrt) or use device cuda"
    need = (f"CUDA {cuda_version.split('.')[0]} and cuDNN 9" if cuda_version
            else "the CUDA and cuDNN this onnxruntime was built for")
    return f"{cause} -> install {need} (pip install 'onnxruntime-gpu[cuda,cudnn]') or put them on LD_LIBRARY_PATH"


def _cuda_version(ort: Any) -> str | None:
    try:
        info = importlib.import_module(f"{ort.__name__}.capi.build_and_package_info")
    except ImportError:
        return None
    return getattr(info, "cuda_version", None) or None
