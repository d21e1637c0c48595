"""ONNX Runtime backend with an execution-provider preference chain (TensorRT -> CUDA -> OpenVINO -> CPU).

ONNX Runtime falls back to CPU quietly when an accelerator fails to start (onnxruntime-gpu even lists
CUDA/TensorRT on a box without a GPU), so after creating the session we read the providers that are
really active and report any difference as ``degraded`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError, ModelError
from .base import Backend, BackendInfo, BackendOptions, TensorSpec
from .ort_gpu import preload_nvidia_libraries, why_not_started

log = logging.getLogger(__name__)

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEVICE_OF = {"TensorrtExecutionProvider": "cuda", "CUDAExecutionProvider": "cuda",
             "OpenVINOExecutionProvider": "openvino", "CPUExecutionProvider": "cpu"}
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
              "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64",
              "tensor(double)": "float64", "tensor(bool)": "bool"}


def provider_chain(options: BackendOptions) -> list[str]:
    """The chain to ask for: from ``options.device`` (if given) down the preference list, CPU always last."""
    unknown = [p for p in options.providers if p not in PROVIDERS]
    if unknown:
        raise BackendError(f"unknown onnxruntime provider(s) {unknown}", f"use names from {list(PROVIDERS)}")
    chain = list(options.providers)
    if options.device:
        if options.device not in PROVIDERS:
            raise BackendError(f"onnxruntime has no device {options.device!r}", f"use one of {list(PROVIDERS)}")
        chain = chain[chain.index(options.device):] if options.device in chain else [options.device]
    if "cpu" not in chain:
        chain.append("cpu")
    return chain


class OnnxRuntimeBackend(Backend):
    name: ClassVar[str] = "onnxruntime"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)
    rank: ClassVar[int] = 10
    loads_bytes: ClassVar[bool] = True

    def __init__(self, model_path: Path, options: BackendOptions, *, model_bytes: bytes | None = None) -> None:
        import onnxruntime as ort

        self._ort = ort
        chain = provider_chain(options)
        available = set(ort.get_available_providers())
        wanted = [PROVIDERS[p] for p in chain]
        missing = [p for p in wanted if p not in available]
        providers: list[Any] = []
        for p in wanted:
            if p in available:
                providers.append((p, self._provider_options(p, options, model_path, model_bytes is None)))
        preload_nvidia_libraries(ort, [p for p, _ in providers])
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if options.threads:
            so.intra_op_num_threads = options.threads
        if options.low_power:
            so.add_session_config_entry("session.force_spinning_stop", "1")
        so.log_severity_level = 3  # errors only; what matters is read back below
        try:
            model = model_bytes if model_bytes is not None else str(model_path)
            self.session = ort.InferenceSession(model, sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"onnxruntime could not load {model_path.name}: {str(exc).splitlines()[0][:200]}",
                             "check that the file is a valid ONNX model (edgeinfer model verify)") from exc
        active = self.session.get_providers()
        asked = [p for p, _ in providers]
        accel = [p for p in asked if p != "CPUExecutionProvider"]
        failed = accel[0] if accel and (not active or active[0] != accel[0]) else None
        not_started = f"{failed} did not start: {why_not_started(ort, failed)}" if failed else None
        self.info = self._describe(options, wanted, missing, active, not_started)
        self.inputs = [self._spec(i) for i in self.session.get_inputs()]
        self.outputs = [self._spec(o) for o in self.session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    @staticmethod
    def _provider_options(provider: str, options: BackendOptions, model_path: Path, cache_ok: bool = True
                          ) -> dict[str, Any]:
        """``cache_ok`` False (an encrypted model): no TensorRT engine cache, which would be the model in clear."""
        if provider == "TensorrtExecutionProvider":
            cache = options.engine_cache_dir or str(model_path.parent / ".trt-cache")
            o: dict[str, Any] = {"device_id": options.gpu_id, "trt_engine_cache_enable": cache_ok,
                                 "trt_fp16_enable": options.precision == "fp16"}
            if cache_ok:
                o["trt_engine_cache_path"] = cache
            if options.precision == "int8":
                o["trt_int8_enable"] = True
                if options.int8_calibration_table:
                    o["trt_int8_calibration_table_name"] = options.int8_calibration_table
            return o
        if provider == "CUDAExecutionProvider":
            return {"device_id": options.gpu_id}
        return {}

    @staticmethod
    def _describe(options: BackendOptions, wanted: list[str], missing: list[str], active: list[str],
                  not_started: str | None) -> BackendInfo:
        first = active[0] if active else "CPUExecutionProvider"
        reason = None
        if not_started:
            reason = f"{not_started}; running on {first}"
        elif options.device and options.device != "cpu" and PROVIDERS[options.device] in missing:
            reason = (f"{PROVIDERS[options.device]} was requested but this onnxruntime build lacks it "
                      f"(install edgeinfer[gpu]); running on {first}")
        precision = "fp32"
        if first == "TensorrtExecutionProvider" and options.precision in ("fp16", "int8"):
            precision = options.precision
        device = DEVICE_OF.get(first, first)
        if device == "cuda":
            device = f"cuda:{options.gpu_id}"
        return BackendInfo(backend="onnxruntime", device=device, precision=precision, requested=wanted,
                           active=list(active), degraded=reason is not None, reason=reason)

    @staticmethod
    def _spec(node: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
        return TensorSpec(node.name, shape, _ORT_TYPES.get(node.type, node.type))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self._output_names, feeds)
        return dict(zip(self._output_names, outs, strict=True))

    def bare_call(self, input_name: str) -> Callable[[np.ndarray], Any]:
        sess = self.session
        return lambda t: sess.run(None, {input_name: t})

    def threads(self) -> int | None:
        return self.session.get_session_options().intra_op_num_threads or None

    def close(self) -> None:
        self.session = None
