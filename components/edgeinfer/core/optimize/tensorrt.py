"""Build a TensorRT engine from an ONNX model: what ``edgeinfer model optimize`` runs on the device.

TensorRT 10 builder API: ``Builder`` -> network (TensorRT 10 networks are always explicit-batch, so the
deprecated EXPLICIT_BATCH flag is not passed) filled by ``OnnxParser`` -> ``BuilderConfig`` (FP16/INT8 flags,
workspace pool limit, an optimisation profile for a dynamic batch) -> ``build_serialized_network``.

int8 here is TensorRT's implicit quantisation, calibrated one of two ways: from frames (``calibration`` =
preprocessed input tensors, fed to the builder by ``trt_calibrator.FramesCalibrator`` through device memory;
the cache TensorRT writes is kept beside the engine so a rebuild need not calibrate again), or from a
calibration cache made earlier (``trtexec --int8 --calib=...``, Polygraphy, or a previous build), handed to
TensorRT through a calibrator whose ``read_calibration_cache`` returns it; the calibrator class follows the
algorithm named in the cache's header. An engine is written atomically, with a sidecar
``<engine>.meta.json`` that the TensorRT backend reads (precision, TensorRT version, source sha256).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..backends.base import Precision
from ..backends.tensorrt import META_SUFFIX, import_cudart, import_tensorrt, make_logger
from ..errors import BackendError, ConfigError, ModelError
from ..progress import Progress, no_progress
from .trt_calibrator import CACHE_SUFFIX, frames_calibrator

log = logging.getLogger(__name__)


#: calibration-cache header (``TRT-<version>-<algorithm>``) -> calibrator base class
_CALIBRATORS = {"EntropyCalibration2": "IInt8EntropyCalibrator2", "EntropyCalibration": "IInt8EntropyCalibrator",
                "MinMaxCalibration": "IInt8MinMaxCalibrator", "LegacyCalibration": "IInt8LegacyCalibrator"}


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: Precision = "fp16",
                 calibration_cache: str | Path | None = None, workspace_mb: int = 1024, max_batch: int = 1,
                 progress: Progress | None = None, calibration: Sequence[np.ndarray] | None = None) -> Path:
    """Build ``engine_path`` from ``onnx_path``. A dynamic batch dim gets the profile 1..``max_batch``.

    int8 needs ``calibration`` (input tensors with their batch dim, made by the package's preprocessing) or
    ``calibration_cache``; with frames, the cache TensorRT writes lands in ``<engine>.calib.cache``."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    report = progress or no_progress  # our own stages and TensorRT's build phases
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"unknown precision {precision!r}", "use fp32, fp16 or int8")
    if precision == "int8" and calibration_cache is None and not calibration:
        raise ConfigError("int8 needs calibration frames or a calibration cache for TensorRT",
                          "pass --calibration FRAMES (representative frames), or --calibration-cache FILE "
                          "(from an earlier calibration run), or build with --precision fp16")
    cache = _read_cache(Path(calibration_cache)) if calibration_cache is not None else None
    if workspace_mb < 1 or max_batch < 1:
        raise ConfigError("workspace_mb and max_batch must be at least 1", "pass positive numbers")
    try:
        onnx_bytes = onnx_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {onnx_path}: {exc.strerror}", "pass an existing .onnx file") from exc

    trt = import_tensorrt()
    logger = make_logger(trt)
    builder = trt.Builder(logger)
    _check_platform(builder, precision)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    report("parse onnx", 0, 1)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or ["unknown error"]
        raise ModelError(f"TensorRT could not parse {onnx_path.name}: {errors[0]}",
                         "export the model with a supported opset, or run the .onnx with --backend onnxruntime")
    report("parse onnx", 1, 1)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 engines fall back to fp16 where a layer has no int8 kernel
    frames_cal: Any = None  # the calibrator fed with frames: its device buffer is freed, its cache kept
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if cache is None:
            frames_cal = frames_calibrator(trt, import_cudart(), list(calibration or []), report)
        config.int8_calibrator = frames_cal if cache is None else cache_calibrator(trt, cache)
    profile = _batch_profile(builder, network, max_batch)
    if profile is not None:
        config.add_optimization_profile(profile)
    monitor = _progress_monitor(trt, report) if progress is not None else None
    if monitor is not None:
        config.progress_monitor = monitor

    started = time.monotonic()
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if frames_cal is not None:
            frames_cal.free()
    if serialized is None:
        raise BackendError(f"TensorRT could not build an engine from {onnx_path.name}",
                           "see the tensorrt errors logged above; try a larger --workspace-mb or --precision fp32")
    log.info("built %s (%s) in %.1f s", engine_path.name, precision, time.monotonic() - started)
    report("write engine", 0, 1)
    write_atomic(engine_path, memoryview(serialized).tobytes())
    meta: dict[str, Any] = {"precision": precision, "tensorrt": str(trt.__version__), "source": onnx_path.name,
            "source_sha256": hashlib.sha256(onnx_bytes).hexdigest(), "max_batch": max_batch}
    if frames_cal is not None and frames_cal.cache is not None:
        write_atomic(Path(str(engine_path) + CACHE_SUFFIX), frames_cal.cache)
        meta["calibration_cache"] = Path(str(engine_path) + CACHE_SUFFIX).name
    write_atomic(Path(str(engine_path) + META_SUFFIX), json.dumps(meta, indent=2).encode())
    report("write engine", 1, 1)
    return engine_path


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``: readers see old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read calibration cache {path}: {exc.strerror}",
                          "pass the cache file a calibration run wrote") from exc
    if not data.startswith(b"TRT-"):
        raise ConfigError(f"{path.name} is not a TensorRT calibration cache (no TRT- header)",
                          "pass the cache file a calibration run wrote")
    return data


def _check_platform(builder: Any, precision: str) -> None:
    fast = {"fp16": "platform_has_fast_fp16", "int8": "platform_has_fast_int8"}.get(precision)
    if fast and not getattr(builder, fast, True):
        raise BackendError(f"this GPU has no fast {precision} support, so a {precision} engine would be slower",
                           "build with --precision fp16 (or fp32)" if precision == "int8" else
                           "build with --precision fp32")


def cache_calibrator(trt: ModuleType, cache: bytes) -> Any:
    """An ``IInt8Calibrator`` that has no data, only ``cache``: TensorRT reads the scales from it."""
    algorithm = cache.split(b"\n", 1)[0].decode(errors="replace").rsplit("-", 1)[-1]
    base = getattr(trt, _CALIBRATORS.get(algorithm, "IInt8EntropyCalibrator2"))

    class CacheCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # no frames: everything comes from the cache

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data: Any) -> None:
            log.debug("TensorRT offered a calibration cache of %d bytes; keeping the one given", len(data))

    return CacheCalibrator()


def _batch_profile(builder: Any, network: Any, max_batch: int) -> Any | None:
    """A profile 1..max_batch for inputs whose only dynamic dim is the batch; None if all are static."""
    profile = None
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(int(d) for d in tensor.shape)
        if -1 not in shape:
            continue
        if -1 in shape[1:]:
            raise ConfigError(f"input {tensor.name!r} has dynamic dims besides the batch: {shape}",
                              "export the ONNX with a fixed input size")
        profile = profile or builder.create_optimization_profile()
        rest = shape[1:]
        profile.set_shape(tensor.name, (1, *rest), (max_batch, *rest), (max_batch, *rest))
    return profile


def _progress_monitor(trt: ModuleType, report: Progress) -> Any | None:
    """A ``trt.IProgressMonitor`` forwarding build phases to ``report`` (None before TensorRT 10.0)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    totals: dict[str, int] = {}

    class Monitor(trt.IProgressMonitor):  # type: ignore[name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            totals[phase_name] = num_steps
            report(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            report(phase_name, step + 1, totals.get(phase_name, 0))
            return True  # keep building

        def phase_finish(self, phase_name: str) -> None:
            totals.pop(phase_name, None)

    return Monitor()
