"""TensorRT engine backend (TensorRT 10+ API: named I/O tensors, ``execute_async_v3``).

TensorRT and cuda-python are imported when a backend is made, never at module import, so a box without
them can import this module (``optimize.py`` shares its helpers). Device buffers are allocated once per
tensor with ``cudaMalloc`` and reused; a buffer is reallocated only when a tensor grows (dynamic batch).
Copies go through one CUDA stream: host -> device, ``execute_async_v3``, device -> host, synchronise.

An engine is tied to the TensorRT version and GPU that built it. ``build_engine`` writes a sidecar
``<engine>.meta.json`` (precision, TensorRT version) that this backend reads to report the precision
and to explain a version mismatch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError, ModelError
from ..plugins import install_hint
from .base import Backend, BackendInfo, BackendOptions, TensorSpec

log = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
_NP_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
              "INT32": "int32", "INT64": "int64", "BOOL": "bool"}
_LOG_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
               "INFO": logging.DEBUG, "VERBOSE": logging.DEBUG}


def import_tensorrt() -> ModuleType:
    """``import tensorrt``, or a BackendError that says how to get it; TensorRT < 10 is refused."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError("TensorRT is not installed (python module 'tensorrt')", install_hint("tensorrt")) from exc
    version = str(getattr(trt, "__version__", "0"))
    if int(version.split(".")[0] or 0) < 10:
        raise BackendError(f"TensorRT {version} is too old: edgeinfer needs TensorRT 10 or newer",
                           "upgrade TensorRT (JetPack 6 on Jetson), or run the .onnx with --backend onnxruntime")
    return trt


def import_cudart() -> Any:
    """cuda-python's runtime API: ``cuda.bindings.runtime`` (cuda-python >= 12.6) or ``cuda.cudart``."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendError("cuda-python is not installed (needed for TensorRT device buffers)",
                               install_hint("cuda")) from exc
    return cudart


def make_logger(trt: ModuleType) -> Any:
    """A ``trt.ILogger`` that sends TensorRT's messages to Python logging."""
    levels = {getattr(trt.ILogger.Severity, name): level for name, level in _LOG_LEVELS.items()
              if hasattr(trt.ILogger.Severity, name)}

    class _Logger(trt.ILogger):  # type: ignore[name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            log.log(levels.get(severity, logging.INFO), "tensorrt: %s", msg)

    return _Logger()


def read_meta(engine_path: Path) -> dict[str, Any]:
    """The sidecar ``build_engine`` wrote next to an engine ({} when absent or unreadable)."""
    try:
        return json.loads(Path(str(engine_path) + META_SUFFIX).read_text())
    except (OSError, ValueError):
        return {}


class TensorRtBackend(Backend):
    name: ClassVar[str] = "tensorrt"
    formats: ClassVar[tuple[str, ...]] = ("tensorrt",)
    rank: ClassVar[int] = 10
    loads_bytes: ClassVar[bool] = True

    def __init__(self, model_path: Path, options: BackendOptions, *, model_bytes: bytes | None = None) -> None:
        if options.device not in (None, "cuda"):
            raise BackendError(f"tensorrt has no device {options.device!r}", "use cuda (or leave the device unset)")
        trt = import_tensorrt()
        self._cudart = import_cudart()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity in bytes)
        self._stream: Any = None
        model_path = Path(model_path)
        try:
            data = model_bytes if model_bytes is not None else model_path.read_bytes()  # deserialised from memory
        except OSError as exc:
            raise ModelError(f"cannot read engine {model_path}: {exc.strerror}",
                             "pass an existing .engine file") from exc
        self._call(self._cudart.cudaSetDevice(options.gpu_id), f"select GPU {options.gpu_id}")
        meta = read_meta(model_path)
        self._logger = make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            built = f" (built with TensorRT {meta['tensorrt']})" if meta.get("tensorrt") else ""
            raise ModelError(f"TensorRT {trt.__version__} cannot load {model_path.name}{built}: an engine is built "
                             "for one TensorRT version and GPU, or the file is not an engine",
                             "rebuild it on this device with `edgeinfer model optimize`")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendError(f"TensorRT could not create an execution context for {model_path.name}",
                               "free GPU memory (other processes?) and retry")
        self.inputs, self.outputs = [], []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            mode = self._engine.get_tensor_mode(name)
            if mode == trt.TensorIOMode.INPUT:
                self.inputs.append(self._spec(name))
            elif mode == trt.TensorIOMode.OUTPUT:
                self.outputs.append(self._spec(name))
        self._stream = self._call(self._cudart.cudaStreamCreate(), "create a CUDA stream")
        self.info = BackendInfo(backend="tensorrt", device=f"cuda:{options.gpu_id}",
                                precision=str(meta.get("precision", "unknown")), requested=["tensorrt"],
                                active=["tensorrt"])

    def _spec(self, name: str) -> TensorSpec:
        shape = tuple(None if int(d) < 0 else int(d) for d in self._engine.get_tensor_shape(name))
        dtype = self._engine.get_tensor_dtype(name)
        np_name = _NP_DTYPES.get(getattr(dtype, "name", str(dtype)).split(".")[-1])
        if np_name is None:
            raise ModelError(f"engine tensor {name!r} has type {dtype}, which edgeinfer cannot feed or read",
                             "rebuild the engine with float32/float16/int8 inputs and outputs")
        return TensorSpec(name, shape, np_name)

    def _call(self, result: Any, what: str) -> Any:
        """Unpack a cuda-python ``(err, value...)`` tuple; raise BackendError unless err is cudaSuccess."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._cudart.cudaError_t.cudaSuccess:
            text = self._cudart.cudaGetErrorString(err)[1]
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise BackendError(f"CUDA failed to {what}: {text}",
                               "check the GPU and its driver (nvidia-smi) and free GPU memory")
        return values[0] if len(values) == 1 else None

    def _device_buffer(self, name: str, nbytes: int) -> int:
        """A device buffer of at least ``nbytes`` for ``name``: reused, or reallocated when it must grow."""
        ptr, capacity = self._buffers.get(name, (0, -1))
        if nbytes > capacity:
            if ptr:
                self._call(self._cudart.cudaFree(ptr), f"free the buffer of {name!r}")
                del self._buffers[name]
            ptr = int(self._call(self._cudart.cudaMalloc(max(nbytes, 1)), f"allocate {nbytes} bytes for {name!r}"))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx = self._cudart, self._context
        kinds = cudart.cudaMemcpyKind
        hosts = []  # keep the host arrays alive until the stream is synchronised
        for spec in self.inputs:
            arr = self._input_array(spec, feeds)
            if None in spec.shape and not ctx.set_input_shape(spec.name, arr.shape):
                raise ModelError(f"input {spec.name!r} shape {arr.shape} is outside what this engine was built for "
                                 f"({spec.shape})", "feed that shape, or rebuild the engine (edgeinfer model "
                                 "optimize --max-batch N)")
            ptr = self._device_buffer(spec.name, arr.nbytes)
            self._call(cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, kinds.cudaMemcpyHostToDevice,
                                              self._stream), f"copy {spec.name!r} to the GPU")
            ctx.set_tensor_address(spec.name, ptr)
            hosts.append(arr)
        outputs: dict[str, np.ndarray] = {}
        for spec in self.outputs:
            shape = tuple(int(d) for d in ctx.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise BackendError(f"output {spec.name!r} has a data-dependent shape {shape}",
                                   "edgeinfer runs engines with shapes known before execution; re-export the model")
            outputs[spec.name] = np.empty(shape, dtype=spec.dtype)
            ctx.set_tensor_address(spec.name, self._device_buffer(spec.name, outputs[spec.name].nbytes))
        if not ctx.execute_async_v3(int(self._stream)):
            raise BackendError("TensorRT failed to run the engine", "see the tensorrt error logged just before")
        for name, host in outputs.items():
            self._call(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes,
                                              kinds.cudaMemcpyDeviceToHost, self._stream), f"copy {name!r} back")
        self._call(cudart.cudaStreamSynchronize(self._stream), "finish the inference")
        del hosts
        return outputs

    @staticmethod
    def _input_array(spec: TensorSpec, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if spec.name not in feeds:
            raise ModelError(f"missing input {spec.name!r}", "feed every input of the engine by name")
        arr = np.asarray(feeds[spec.name])
        if not np.can_cast(arr.dtype, spec.dtype, casting="same_kind"):
            raise ModelError(f"input {spec.name!r} takes {spec.dtype}, got {arr.dtype}", f"feed {spec.dtype}")
        arr = np.ascontiguousarray(arr, dtype=spec.dtype)
        fits = len(arr.shape) == len(spec.shape) and all(
            d is None or d == s for d, s in zip(spec.shape, arr.shape, strict=True))
        if not fits:
            raise ModelError(f"input {spec.name!r} shape {arr.shape} does not match the engine's {spec.shape}",
                             "feed that shape, or rebuild the engine for this one")
        return arr

    def close(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr, _ in self._buffers.values():
            cudart.cudaFree(ptr)
        self._buffers.clear()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None
        self._context = None  # context before engine before runtime, as TensorRT wants
        self._engine = None
        self._runtime = None
