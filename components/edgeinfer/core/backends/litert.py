"""LiteRT (TensorFlow Lite) backend, with the Coral Edge TPU delegate.

Edge TPU: done as pycoral's ``make_interpreter`` does it, on ai-edge-litert:
``Interpreter(model, experimental_delegates=[load_delegate(edgetpu_library, {"device": edgetpu_device})])``.
The delegate is tried when ``options.device == "edgetpu"`` or, with no device given, when the file name
ends in ``_edgetpu.tflite``; ``device="cpu"`` never tries it. When the delegate cannot be loaded
(libedgetpu missing: OSError; library present but no Edge TPU plugged in: ValueError) the model runs
on the CPU and ``info`` says ``degraded`` with what to install or plug in. A model compiled for the
Edge TPU cannot run without one: that is a ModelError, not a silent wrong answer.

Quantised tensors (int8/uint8/int16): ``inputs``/``outputs`` carry the tensor's ``scale`` and
``zero_point`` (real = scale * (q - zero_point)). ``run`` takes float feeds for a quantised input and
quantises them (round to nearest, clip to the dtype's range); feeds already of the tensor's dtype pass
through untouched. Quantised outputs are dequantised, so ``run`` always returns real values (float32).

Batches: a model whose input shape signature has a dynamic batch (-1) is resized to the feed's batch
(``resize_tensor_input`` + ``allocate_tensors``, again only when the batch changes). A model with a fixed
batch (most .tflite files, every Edge TPU model) runs a larger batch in chunks of its own batch size:
resizing a fixed-batch graph is unsafe, because its RESHAPE ops bake the batch in (BlazeFace reshapes
to ``[1, -1, 16]``, so a resized batch would silently mix frames).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError, ModelError
from ..plugins import install_hint
from .base import Backend, BackendInfo, BackendOptions, TensorSpec

log = logging.getLogger(__name__)

#: ``load_delegate(library, options) -> delegate``; raises OSError/ValueError when it cannot.
DelegateLoader = Callable[[str, dict[str, str]], Any]

EDGETPU_SUFFIX = "_edgetpu.tflite"
EDGETPU_OP = "edgetpu-custom-op"
DEVICES = ("edgetpu", "cpu")


def _litert_load_delegate(library: str, options: dict[str, str]) -> Any:
    from ai_edge_litert.interpreter import load_delegate

    return load_delegate(library, options)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Real values -> integers of ``dtype``: round(x / scale + zero_point), clipped to the dtype's range."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(scale) + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers -> real values as float32: scale * (q - zero_point)."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def _spec(detail: dict[str, Any]) -> TensorSpec:
    sig = detail.get("shape_signature")
    shape = sig if sig is not None and len(sig) == len(detail["shape"]) else detail["shape"]
    dims = tuple(None if int(d) < 0 else int(d) for d in shape)
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale and dtype.kind in "iu":
        return TensorSpec(detail["name"], dims, dtype.name, float(scale), int(zero_point))
    return TensorSpec(detail["name"], dims, dtype.name)


class LiteRtBackend(Backend):
    name: ClassVar[str] = "litert"
    formats: ClassVar[tuple[str, ...]] = ("tflite",)
    rank: ClassVar[int] = 10
    loads_bytes: ClassVar[bool] = True

    def __init__(self, model_path: Path, options: BackendOptions, *,
                 load_delegate: DelegateLoader | None = None, model_bytes: bytes | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise BackendError("LiteRT is not installed (python module ai_edge_litert)",
                               install_hint("ai_edge_litert")) from exc
        if options.device not in (None, *DEVICES):
            raise BackendError(f"litert has no device {options.device!r}", f"use one of {list(DEVICES)}")
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"model file {model_path} does not exist", "pass an existing .tflite file")
        want_tpu = options.device == "edgetpu" or (options.device is None and model_path.name.endswith(EDGETPU_SUFFIX))
        requested = ["edgetpu", "cpu"] if want_tpu else ["cpu"]
        self._delegates: list[Any] = []
        self._content = model_bytes  # an encrypted model, decrypted in memory: dropped once the interpreter has it
        reason = None
        if want_tpu:
            reason = self._load_edgetpu(options, load_delegate or _litert_load_delegate)
        try:
            self._interp = self._open(Interpreter, model_path, options.threads)
        except (ValueError, RuntimeError) as exc:  # only raised through when a delegate was in use
            reason = f"the Edge TPU delegate could not run {model_path.name} ({_first_line(exc)}); running on CPU"
            self._delegates = []
            self._interp = self._open(Interpreter, model_path, options.threads)
        self._content = None
        if reason:
            log.warning("litert: %s", reason)
        self.inputs = [_spec(d) for d in self._interp.get_input_details()]
        self.outputs = [_spec(d) for d in self._interp.get_output_details()]
        self._in_index = {d["name"]: d["index"] for d in self._interp.get_input_details()}
        self._out_index = {d["name"]: d["index"] for d in self._interp.get_output_details()}
        self._dynamic_batch = bool(self.inputs) and all(s.shape and s.shape[0] is None for s in self.inputs)
        self._batch = int(self._interp.get_input_details()[0]["shape"][0]) if self._dynamic_batch else None
        device = "edgetpu" if self._delegates else "cpu"
        quantised = any(s.scale is not None for s in self.inputs + self.outputs)
        self.info = BackendInfo(backend="litert", device=device,
                                precision="int8" if quantised or self._delegates else "fp32",
                                requested=requested, active=[device], degraded=reason is not None, reason=reason)

    def _load_edgetpu(self, options: BackendOptions, loader: DelegateLoader) -> str | None:
        """Load the Edge TPU delegate into ``self._delegates``; return why not (the degraded reason) or None."""
        lib = options.edgetpu_library
        where = f" at {options.edgetpu_device}" if options.edgetpu_device else ""
        try:
            self._delegates = [loader(lib, {"device": options.edgetpu_device} if options.edgetpu_device else {})]
            return None
        except OSError as exc:
            return (f"Edge TPU runtime {lib} could not be loaded ({_first_line(exc)}); running on CPU: install "
                    "libedgetpu (libedgetpu1-std from Coral's apt repository, or the runtime in the Docker image)")
        except (ValueError, RuntimeError) as exc:
            return (f"{lib} loaded but found no Edge TPU{where} ({_first_line(exc)}); running on CPU: plug "
                    "in the Coral device (USB 3 port or PCIe) and let this user access it (udev rules / "
                    "plugdev group)")

    def _open(self, interpreter_cls: Any, model_path: Path, threads: int | None) -> Any:
        """An interpreter with tensors allocated. With delegates, errors go to the caller as they are."""
        try:
            model = {"model_content": self._content} if self._content is not None else {"model_path": str(model_path)}
            interp = interpreter_cls(**model, experimental_delegates=self._delegates or None, num_threads=threads)
            interp.allocate_tensors()
            return interp
        except (ValueError, RuntimeError) as exc:
            if self._delegates:
                raise
            if EDGETPU_OP in str(exc):
                raise ModelError(f"{model_path.name} is compiled for the Edge TPU and cannot run on the CPU",
                                 "plug in the Coral Edge TPU and install libedgetpu, or deploy the plain "
                                 "(not _edgetpu) .tflite of this model") from exc
            raise ModelError(f"LiteRT could not load {model_path.name}: {_first_line(exc)}",
                             "check that the file is a valid .tflite model for this LiteRT "
                             "(edgeinfer model verify)") from exc

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch (input name -> array with the batch dim); returns output name -> array.

        A float feed for a quantised input is quantised (round, clip to the dtype); a feed of the tensor's own
        dtype passes through. Quantised outputs come back dequantised to float32. A batch larger than a
        fixed-batch model's runs in chunks of that batch; a dynamic-batch model is resized to it.
        """
        arrays = self._check_feeds(feeds)
        batch = int(next(iter(arrays.values())).shape[0]) if self.inputs and self.inputs[0].shape else 1
        if self._dynamic_batch:
            if batch != self._batch:
                for spec in self.inputs:
                    self._interp.resize_tensor_input(self._in_index[spec.name], list(arrays[spec.name].shape))
                self._interp.allocate_tensors()
                self._batch = batch
            return self._invoke(arrays)
        step = self.inputs[0].fixed_batch if self.inputs else None
        if step is None or batch == step:
            return self._invoke(arrays)
        if batch % step:
            raise ModelError(f"this model takes batches of {step} frames, got {batch}",
                             f"feed a multiple of {step} frames (pipeline.max_batch)")
        parts = [self._invoke({k: v[i:i + step] for k, v in arrays.items()}) for i in range(0, batch, step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self._out_index}

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if missing:
            raise ModelError(f"missing input(s) {missing}; the model takes {[s.name for s in self.inputs]}",
                             "feed every input by name")
        arrays = {s.name: self._to_model(s, np.asarray(feeds[s.name])) for s in self.inputs}
        batches = {a.shape[0] for a in arrays.values() if a.ndim}
        if len(batches) > 1:
            raise ModelError(f"inputs disagree on the batch size: {sorted(batches)}", "feed equal batches")
        return arrays

    @staticmethod
    def _to_model(spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.name == spec.dtype:
            return arr
        if spec.scale is not None and arr.dtype.kind == "f":
            return quantize(arr, spec.scale, spec.zero_point or 0, np.dtype(spec.dtype))
        if spec.scale is None and arr.dtype.kind == "f" and np.dtype(spec.dtype).kind == "f":
            return arr.astype(spec.dtype)
        raise ModelError(f"input {spec.name!r} takes {spec.dtype}, got {arr.dtype}",
                         f"feed float32 or {spec.dtype}")

    def _invoke(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, arr in arrays.items():
            self._interp.set_tensor(self._in_index[name], arr)
        self._interp.invoke()
        out: dict[str, np.ndarray] = {}
        for spec in self.outputs:
            value = self._interp.get_tensor(self._out_index[spec.name])
            out[spec.name] = dequantize(value, spec.scale, spec.zero_point or 0) if spec.scale is not None else value
        return out

    def bare_call(self, input_name: str) -> Callable[[np.ndarray], Any]:
        interp, inp = self._interp, self._in_index[input_name]
        outs = list(self._out_index.values())

        def call(t: np.ndarray) -> list[np.ndarray]:
            interp.set_tensor(inp, t)
            interp.invoke()
            return [interp.get_tensor(i) for i in outs]

        return call

    def close(self) -> None:
        self._interp = None  # the interpreter goes before the delegates it uses
        self._delegates = []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
