"""TensorRT int8 calibration from frames, against the TensorRT 10 Python API.

TensorRT's implicit int8 calibration calls back into Python while it builds: ``get_batch_size()``, then
``get_batch(names)`` again and again, each time wanting one *device* pointer per input tensor named (the
next batch, already copied to GPU memory), until ``get_batch`` returns None; then it hands the scales it
found to ``write_calibration_cache(cache)``. ``read_calibration_cache()`` returning None makes it calibrate.

The frames arrive here as the package's own preprocessed input tensors (batch dim included), so the engine
is calibrated on exactly what it will see. One device buffer is reused for every batch (copies with
cuda-python's ``cudaMemcpy``), and freed by ``free()`` once the build is over.

(TensorRT 10.1 deprecates implicit quantisation in favour of explicit Q/DQ graphs; for those, quantise to
``onnx-int8`` first and build that with ``tensorrt-fp16``: the Q/DQ nodes carry the scales.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import BackendError, ConfigError
from ..progress import Progress

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".calib.cache"  # beside the engine: a rebuild can pass it as --calibration-cache


def frames_calibrator(trt: ModuleType, cudart: Any, batches: Sequence[np.ndarray], progress: Progress) -> Any:
    """An ``IInt8EntropyCalibrator2`` that feeds ``batches`` (float32, batch dim first) to TensorRT. After the
    build, its ``cache`` holds what TensorRT wrote (or None) and ``free()`` releases the device buffer."""
    if not batches:
        raise ConfigError("int8 calibration got no frames", "pass --calibration FRAMES with representative images")
    shapes = {b.shape for b in batches}
    if len(shapes) != 1:
        raise ConfigError(f"calibration batches differ in shape: {sorted(shapes)}",
                          "calibrate with frames preprocessed by one package")
    base = trt.IInt8EntropyCalibrator2
    data = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.cache: bytes | None = None
            self._next = 0
            self._ptr = 0

        def get_batch_size(self) -> int:
            return int(data[0].shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._next >= len(data):
                return None
            if len(names) != 1:
                raise BackendError(f"int8 calibration feeds one input, the network has {len(names)}: {names}",
                                   "calibrate elsewhere and pass --calibration-cache FILE")
            batch = data[self._next]
            if not self._ptr:
                self._ptr = int(_check(cudart, cudart.cudaMalloc(batch.nbytes), "allocate a calibration buffer"))
            _check(cudart, cudart.cudaMemcpy(self._ptr, batch.ctypes.data, batch.nbytes,
                                             cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                   "copy a calibration batch to the GPU")
            self._next += 1
            progress("int8 calibration", self._next, len(data))
            return [self._ptr]

        def read_calibration_cache(self) -> bytes | None:
            return None  # always calibrate: these frames are why we are here

        def write_calibration_cache(self, cache: Any) -> None:
            self.cache = bytes(cache)
            log.info("int8 calibration on %d batches gave a cache of %d bytes", self._next, len(self.cache))

        def free(self) -> None:
            if self._ptr:
                _check(cudart, cudart.cudaFree(self._ptr), "free the calibration buffer")
                self._ptr = 0

    return Calibrator()


def _check(cudart: Any, result: Any, what: str) -> Any:
    """Unpack cuda-python's ``(err, value...)``; BackendError unless err is cudaSuccess."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        text = cudart.cudaGetErrorString(err)[1]
        text = text.decode() if isinstance(text, bytes) else str(text)
        raise BackendError(f"CUDA failed to {what}: {text}", "check the GPU and its driver (nvidia-smi)")
    return values[0] if values else None
