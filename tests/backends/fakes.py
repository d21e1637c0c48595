"""Fakes for what this machine cannot reach: the ``tensorrt`` module and cuda-python's CUDA runtime.

They compute, so tests prove behaviour rather than calls:

- ``FakeCudart`` keeps "device memory" in numpy buffers at addresses no host pointer can have; every copy
  checks direction and bounds, so a wrong pointer, kind or size is an error (as CUDA would report it).
- A fake engine's outputs are its inputs times a factor (``{"out": ["in", 2.0]}``). ``execute_async_v3``
  reads the inputs from, and writes the outputs to, the addresses the backend bound, *through the cudart
  API* - so it works with ``FakeCudart`` here and with the real cudart on a GPU machine.
- The fake builder parses a real ONNX file with the ``onnx`` package (graphs of ``Mul`` by a scalar
  constant) and serialises an engine the fake runtime loads; it records flags, pool limits, profiles,
  the calibration cache it was given, and drives the progress monitor. A calibrator without a cache is
  driven as TensorRT drives one: ``get_batch`` until None, every batch read back from device memory.
"""

from __future__ import annotations

import ctypes
import enum
import json
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

ENGINE_MAGIC = b"FAKE-TRT-ENGINE\n"
DEVICE_BASE = 0xD000_0000_0000  # non-canonical on x86-64 / arm64: never a host address
NP_OF = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "UINT8": np.uint8,
         "INT64": np.int64, "BOOL": np.bool_}


# --------------------------------------------------------------------------------------------- cudart
class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStream_t:
    def __init__(self, handle: int) -> None:
        self._handle = handle

    def __int__(self) -> int:
        return self._handle


class FakeCudart:
    """The subset of ``cuda.bindings.runtime`` the TensorRT backend uses; functions return cuda-python tuples."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind
    cudaStream_t = cudaStream_t

    def __init__(self, device_count: int = 1, memory_limit: int | None = None) -> None:
        self.device_count = device_count
        self.memory_limit = memory_limit
        self.allocations: dict[int, np.ndarray] = {}
        self.malloc_calls = 0
        self.free_calls = 0
        self.streams: set[int] = set()
        self.device: int | None = None
        self._next = DEVICE_BASE

    @property
    def live_bytes(self) -> int:
        return sum(a.nbytes for a in self.allocations.values())

    def cudaGetErrorString(self, err: cudaError_t) -> tuple[cudaError_t, bytes]:
        return cudaError_t.cudaSuccess, cudaError_t(err).name.encode()

    def cudaSetDevice(self, device: int) -> tuple[cudaError_t]:
        if not 0 <= device < self.device_count:
            return (cudaError_t.cudaErrorInvalidDevice,)
        self.device = device
        return (cudaError_t.cudaSuccess,)

    def cudaMalloc(self, size: int) -> tuple[cudaError_t, int]:
        self.malloc_calls += 1
        if self.memory_limit is not None and self.live_bytes + size > self.memory_limit:
            return cudaError_t.cudaErrorMemoryAllocation, 0
        ptr = self._next
        self._next += max(size, 1) + 0x1000
        self.allocations[ptr] = np.zeros(size, np.uint8)
        return cudaError_t.cudaSuccess, ptr

    def cudaFree(self, ptr: int) -> tuple[cudaError_t]:
        self.free_calls += 1
        if self.allocations.pop(int(ptr), None) is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamCreate(self) -> tuple[cudaError_t, cudaStream_t]:
        handle = 0x5000 + len(self.streams) + 1
        self.streams.add(handle)
        return cudaError_t.cudaSuccess, cudaStream_t(handle)

    def cudaStreamSynchronize(self, stream: Any) -> tuple[cudaError_t]:
        return (cudaError_t.cudaSuccess if int(stream) in self.streams else cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaStreamDestroy(self, stream: Any) -> tuple[cudaError_t]:
        if int(stream) not in self.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        self.streams.discard(int(stream))
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: cudaMemcpyKind,
                        stream: Any) -> tuple[cudaError_t]:
        if int(stream) not in self.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return self.cudaMemcpy(dst, src, count, kind)

    def cudaMemcpy(self, dst: int, src: int, count: int, kind: cudaMemcpyKind) -> tuple[cudaError_t]:
        to_dev = kind in (cudaMemcpyKind.cudaMemcpyHostToDevice, cudaMemcpyKind.cudaMemcpyDeviceToDevice)
        from_dev = kind in (cudaMemcpyKind.cudaMemcpyDeviceToHost, cudaMemcpyKind.cudaMemcpyDeviceToDevice)
        d = self._address(int(dst), count, to_dev)
        s = self._address(int(src), count, from_dev)
        if d is None or s is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        ctypes.memmove(d, s, count)
        return (cudaError_t.cudaSuccess,)

    def _address(self, ptr: int, count: int, device: bool) -> int | None:
        """The real address behind ``ptr``; None if it is on the wrong side or the range overruns."""
        if not device:
            return None if ptr >= DEVICE_BASE or ptr == 0 else ptr
        for base, buf in self.allocations.items():
            if base <= ptr and ptr + count <= base + buf.nbytes:
                return buf.ctypes.data + (ptr - base)
        return None


# ------------------------------------------------------------------------------------------ tensorrt
class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 8


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class BuilderFlag(enum.Enum):
    FP16 = 0
    INT8 = 1
    STRICT_TYPES = 5


class MemoryPoolType(enum.Enum):
    WORKSPACE = 0


class NetworkDefinitionCreationFlag(enum.Enum):
    EXPLICIT_BATCH = 0


class ILogger:
    class Severity(enum.Enum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        raise NotImplementedError


class IInt8Calibrator:
    pass


class IInt8EntropyCalibrator2(IInt8Calibrator):
    pass


class IInt8EntropyCalibrator(IInt8Calibrator):
    pass


class IInt8MinMaxCalibrator(IInt8Calibrator):
    pass


class IInt8LegacyCalibrator(IInt8Calibrator):
    pass


class IProgressMonitor:
    pass


def engine_bytes(tensors: list[dict[str, Any]], compute: dict[str, list[Any]],
                 profiles: dict[str, list[list[int]]] | None = None, version: str = "10.3.0") -> bytes:
    """A serialised fake engine: tensors in I/O order ``{name, mode, shape, dtype}``, ``compute`` out -> [in, k]."""
    doc = {"tensors": tensors, "compute": compute, "profiles": profiles or {}, "version": version}
    return ENGINE_MAGIC + json.dumps(doc).encode()


class FakeEngine:
    def __init__(self, doc: dict[str, Any], cudart: Any) -> None:
        self.doc = doc
        self.cudart = cudart
        self.tensors = {t["name"]: t for t in doc["tensors"]}
        self.contexts: list[FakeContext] = []

    @property
    def num_io_tensors(self) -> int:
        return len(self.doc["tensors"])

    def get_tensor_name(self, index: int) -> str:
        return self.doc["tensors"][index]["name"]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode[self.tensors[name]["mode"]] if name in self.tensors else TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.tensors[name]["shape"])

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self.tensors[name]["dtype"]]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self.doc["profiles"][name]]

    def create_execution_context(self) -> FakeContext:
        context = FakeContext(self)
        self.contexts.append(context)
        return context


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.shapes = {n: tuple(t["shape"]) for n, t in engine.tensors.items() if t["mode"] == "INPUT"}
        self.addresses: dict[str, int] = {}
        self.executions = 0

    def set_input_shape(self, name: str, shape: Any) -> bool:
        declared = self.engine.tensors[name]["shape"]
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(declared) or any(d != -1 and d != s for d, s in zip(declared, shape, strict=True)):
            return False
        if name in self.engine.doc["profiles"]:
            low, _, high = self.engine.doc["profiles"][name]
            if not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high, strict=True)):
                return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.shapes:
            return self.shapes[name]
        source = self.shapes[self.engine.doc["compute"][name][0]]
        return tuple(s if d == -1 else d for d, s in zip(self.engine.tensors[name]["shape"], source, strict=True))

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        if name not in self.engine.tensors:
            return False
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not isinstance(stream_handle, int) or any(-1 in s for s in self.shapes.values()):
            return False
        cudart, kinds = self.engine.cudart, self.engine.cudart.cudaMemcpyKind
        for out, (source, factor) in self.engine.doc["compute"].items():
            if out not in self.addresses or source not in self.addresses:
                return False
            host_in = np.empty(self.shapes[source], NP_OF[self.engine.tensors[source]["dtype"]])
            if not _ok(cudart.cudaMemcpyAsync(host_in.ctypes.data, self.addresses[source], host_in.nbytes,
                                              kinds.cudaMemcpyDeviceToHost, stream_handle)):
                return False
            _ok(cudart.cudaStreamSynchronize(stream_handle))
            host_out = (host_in.astype(np.float64) * factor).astype(NP_OF[self.engine.tensors[out]["dtype"]])
            if not _ok(cudart.cudaMemcpyAsync(self.addresses[out], host_out.ctypes.data, host_out.nbytes,
                                              kinds.cudaMemcpyHostToDevice, stream_handle)):
                return False
            _ok(cudart.cudaStreamSynchronize(stream_handle))
        self.executions += 1
        return True


def _ok(result: tuple[Any, ...]) -> bool:
    return int(result[0]) == 0


class FakeTensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: DataType) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype


class FakeNetwork:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[FakeTensor] = []
        self.outputs: list[FakeTensor] = []
        self.compute: dict[str, list[Any]] = {}

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, index: int) -> FakeTensor:
        return self.inputs[index]


class FakeParserError:
    def __init__(self, text: str) -> None:
        self.text = text

    def desc(self) -> str:
        return self.text

    def __str__(self) -> str:
        return f"In node -1 (parse): {self.text}"


class FakeOnnxParser:
    ONNX_TYPES: ClassVar[dict[int, DataType]] = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8,
                                                 2: DataType.UINT8, 6: DataType.INT32}

    def __init__(self, network: FakeNetwork, logger: ILogger) -> None:
        self.network, self.logger = network, logger
        self.errors: list[FakeParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> FakeParserError:
        return self.errors[index]

    def parse(self, model: bytes) -> bool:
        import onnx
        from onnx import numpy_helper

        try:
            graph = onnx.load_from_string(bytes(model)).graph
        except Exception as exc:  # onnx raises DecodeError and friends
            self.errors.append(FakeParserError(f"failed to parse ONNX model: {exc}"))
            return False
        consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type != "Mul" or node.input[1] not in consts or consts[node.input[1]].size != 1:
                self.errors.append(FakeParserError(f"the fake parser handles only Mul by a scalar, not {node.op_type}"))
                return False
            self.network.compute[node.output[0]] = [node.input[0], float(consts[node.input[1]].reshape(()))]

        def tensor(v: Any) -> FakeTensor:
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)
            return FakeTensor(v.name, dims, self.ONNX_TYPES[v.type.tensor_type.elem_type])

        self.network.inputs = [tensor(v) for v in graph.input if v.name not in consts]
        self.network.outputs = [tensor(v) for v in graph.output]
        return True


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[tuple[int, ...]]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
        self.shapes[name] = [tuple(min), tuple(opt), tuple(max)]


class FakeBuilderConfig:
    def __init__(self) -> None:
        self.flags: set[BuilderFlag] = set()
        self.pool_limits: dict[MemoryPoolType, int] = {}
        self.profiles: list[FakeProfile] = []
        self.int8_calibrator: IInt8Calibrator | None = None
        self.progress_monitor: IProgressMonitor | None = None
        self.calibration_cache_read: bytes | None = None
        self.calibration_batches: list[np.ndarray] = []  # what a frames calibrator fed, read from device memory

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(flag)

    def get_flag(self, flag: BuilderFlag) -> bool:
        return flag in self.flags

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        self.pool_limits[pool] = size

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class FakeBuilder:
    def __init__(self, module: FakeTensorRT, logger: ILogger) -> None:
        self.module, self.logger = module, logger
        self.platform_has_fast_fp16 = module.fast_fp16
        self.platform_has_fast_int8 = module.fast_int8

    def create_network(self, flags: int = 0) -> FakeNetwork:
        self.module.last_network = FakeNetwork(flags)
        return self.module.last_network

    def create_builder_config(self) -> FakeBuilderConfig:
        self.module.last_config = FakeBuilderConfig()
        return self.module.last_config

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(self, network: FakeNetwork, config: FakeBuilderConfig) -> bytes | None:
        error = ILogger.Severity.ERROR
        if BuilderFlag.INT8 in config.flags:
            if not isinstance(config.int8_calibrator, IInt8Calibrator):
                self.logger.log(error, "Calibration failure occurred with no scaling factors detected.")
                return None
            config.calibration_cache_read = config.int8_calibrator.read_calibration_cache()
            if config.calibration_cache_read is None and not self._calibrate(network, config):
                self.logger.log(error, "Calibration failure occurred with no scaling factors detected.")
                return None
        if self.module.fail_build:
            self.logger.log(error, "Error Code 2: OutOfMemory (Requested size was 1073741824 bytes.)")
            return None
        profile = config.profiles[0].shapes if config.profiles else {}
        if any(-1 in t.shape and t.name not in profile for t in network.inputs):
            self.logger.log(error, "Network has dynamic or shape inputs, but no optimization profile has been "
                                   "defined.")
            return None
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 3)
            for step in range(3):
                if not monitor.step_complete("Building engine", step):
                    return None
            monitor.phase_finish("Building engine")
        tensors = [{"name": t.name, "mode": "INPUT", "shape": list(t.shape), "dtype": t.dtype.name}
                   for t in network.inputs]
        tensors += [{"name": t.name, "mode": "OUTPUT", "shape": list(t.shape), "dtype": t.dtype.name}
                    for t in network.outputs]
        return engine_bytes(tensors, network.compute, {k: [list(s) for s in v] for k, v in profile.items()},
                            self.module.__version__)


    def _calibrate(self, network: FakeNetwork, config: FakeBuilderConfig) -> bool:
        """What TensorRT does with a calibrator that has no cache: ``get_batch`` until None, each pointer read
        back from device memory through cudart (so a host pointer or a short buffer fails), per-input absolute
        maxima -> scales, handed to ``write_calibration_cache`` in TensorRT's text format."""
        calibrator, cudart = config.int8_calibrator, self.module.cudart
        names = [t.name for t in network.inputs]
        batch = calibrator.get_batch_size()
        amax = dict.fromkeys(names, 0.0)
        while (pointers := calibrator.get_batch(names)) is not None:
            for name, ptr in zip(names, pointers, strict=True):
                shape = next(t.shape for t in network.inputs if t.name == name)
                host = np.empty((batch, *shape[1:]), np.float32)
                if not _ok(cudart.cudaMemcpy(host.ctypes.data, ptr, host.nbytes,
                                             cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)):
                    return False
                config.calibration_batches.append(host.copy())
                amax[name] = max(amax[name], float(np.abs(host).max()))
        if not config.calibration_batches:
            return False
        lines = [f"{n}: {np.float32(max(a, 1e-8) / 127.0).view(np.uint32):08x}" for n, a in amax.items()]
        calibrator.write_calibration_cache("\n".join(["TRT-100300-EntropyCalibration2", *lines]).encode() + b"\n")
        return True


class FakeRuntime:
    def __init__(self, module: FakeTensorRT, logger: ILogger) -> None:
        self.module, self.logger = module, logger

    def deserialize_cuda_engine(self, data: bytes) -> FakeEngine | None:
        data = bytes(data)
        if not data.startswith(ENGINE_MAGIC):
            self.logger.log(ILogger.Severity.ERROR, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                                                    "(Serialization assertion magicTagRead == kMAGIC_TAG failed.)")
            return None
        doc = json.loads(data[len(ENGINE_MAGIC):])
        if doc["version"] != self.module.__version__:
            self.logger.log(ILogger.Severity.ERROR, f"Serialization assertion: version tag {doc['version']} "
                                                    f"does not match {self.module.__version__}")
            return None
        engine = FakeEngine(doc, self.module.cudart)
        self.module.engines.append(engine)
        return engine


class FakeTensorRT(ModuleType):
    """Stands in for ``import tensorrt``: the v10 names the backend and the builder use."""

    DataType = DataType
    TensorIOMode = TensorIOMode
    BuilderFlag = BuilderFlag
    MemoryPoolType = MemoryPoolType
    NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
    ILogger = ILogger
    IInt8Calibrator = IInt8Calibrator
    IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    IInt8EntropyCalibrator = IInt8EntropyCalibrator
    IInt8MinMaxCalibrator = IInt8MinMaxCalibrator
    IInt8LegacyCalibrator = IInt8LegacyCalibrator
    IProgressMonitor = IProgressMonitor
    OnnxParser = FakeOnnxParser

    def __init__(self, cudart: Any, version: str = "10.3.0") -> None:
        super().__init__("tensorrt")
        self.__version__ = version
        self.cudart = cudart
        self.fast_fp16 = True
        self.fast_int8 = True
        self.fail_build = False
        self.engines: list[FakeEngine] = []
        self.last_network: FakeNetwork | None = None
        self.last_config: FakeBuilderConfig | None = None

    def Runtime(self, logger: ILogger) -> FakeRuntime:
        return FakeRuntime(self, logger)

    def Builder(self, logger: ILogger) -> FakeBuilder:
        return FakeBuilder(self, logger)
