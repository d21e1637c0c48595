"""The backend port: load a model file, run a batch, describe what actually runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .. import scope

Precision = Literal["fp32", "fp16", "int8"]


class BackendOptions(BaseModel):
    """Backend choice and tuning, shared by every backend (each reads what applies to it)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(default="auto", description="auto, onnxruntime, litert or tensorrt")
    device: str | None = Field(
        default=None,
        description="Preferred device: onnxruntime tensorrt|cuda|openvino|cpu, litert edgetpu|cpu, "
        "tensorrt cuda. None = the best the backend finds",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["tensorrt", "cuda", "openvino", "cpu"],
        description="onnxruntime execution-provider preference chain, best first",
    )
    precision: Precision = Field(default="fp32", description="fp16/int8 where the device supports it")
    engine_cache_dir: str | None = Field(default=None, description="TensorRT EP engine cache (default: state dir)",
                                         json_schema_extra=scope.local())
    int8_calibration_table: str | None = Field(default=None, description="INT8 calibration table file (TensorRT)",
                                               json_schema_extra=scope.local())
    edgetpu_device: str | None = Field(default=None, description="Edge TPU to open: usb, usb:0, pci:0 (None = any)")
    edgetpu_library: str = Field(default="libedgetpu.so.1", json_schema_extra=scope.local(),
                                 description="Edge TPU delegate library loaded into the process")
    threads: int | None = Field(default=None, ge=1, le=256,
                                description="CPU threads for inference, 1 to 256. None = auto: the runtime's default, "
                                   "or one core left to the other pipeline stages on a 2-4 core host when "
                                   "preprocessing costs >= 25% of an inference")
    gpu_id: int = Field(default=0, ge=0, le=63, description="CUDA device index")
    low_power: bool = Field(default=False,
                            description="onnxruntime on CPU: inference threads sleep as soon as a frame is done "
                            "instead of spin-waiting for the next (session.force_spinning_stop). For battery "
                            "or thermally limited devices at a paced frame rate: much less idle CPU for a few "
                            "percent more latency per frame (docs/benchmarks.md)")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    shape: tuple[int | str | None, ...]  # str/None for dynamic dims
    dtype: str  # numpy dtype name: float32, uint8, int8, float16, ...
    scale: float | None = None  # quantised tensors: real = scale * (q - zero_point)
    zero_point: int | None = None

    @property
    def fixed_batch(self) -> int | None:
        return self.shape[0] if self.shape and isinstance(self.shape[0], int) else None


@dataclass(slots=True)
class BackendInfo:
    """What runs, what was asked for, and why it differs. Goes into health telemetry as is."""

    backend: str
    device: str
    precision: str
    requested: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    degraded: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        s = f"{self.backend} on {self.device} ({self.precision}; active: {', '.join(self.active) or '-'})"
        return s + (f" DEGRADED: {self.reason}" if self.degraded else "")


class Backend(ABC):
    """A loaded model. Instances are used from one thread at a time (the pipeline's infer stage)."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    #: takes ``model_bytes=`` (an encrypted model, decrypted in memory: never written to disk)
    loads_bytes: ClassVar[bool] = False
    #: ``auto`` picks the installed backend with the lowest rank among those that load the model's format
    rank: ClassVar[int] = 100

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    info: BackendInfo

    @abstractmethod
    def __init__(self, model_path: Path, options: BackendOptions) -> None: ...

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Arrays keep the batch dimension. Returns output name -> array."""

    def bare_call(self, input_name: str) -> Callable[[np.ndarray], Any]:
        """The runtime's own call for one input tensor, without edgeinfer's feed handling: what
        ``edgeinfer bench`` compares the pipeline's infer stage with. Runtimes with a call of their own
        override it."""
        return lambda t: self.run({input_name: t})

    def threads(self) -> int | None:
        """Intra-op threads the runtime was opened with, when it says."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device memory and handles."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
