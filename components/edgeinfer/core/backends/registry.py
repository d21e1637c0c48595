"""Lazy backend registry: an explicit table, each plugin imported on first use.

A box without TensorRT never imports it; a missing runtime is a clear error that says what to install.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..errors import BackendError, ModelError
from .base import Backend, BackendOptions

log = logging.getLogger(__name__)

#: backend name -> (module, class, pip extra that installs its runtime)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("edgeinfer.core.backends.onnxruntime", "OnnxRuntimeBackend", "edgeinfer (base install)"),
    "litert": ("edgeinfer.core.backends.litert", "LiteRtBackend", "edgeinfer[tflite]"),
    "tensorrt": ("edgeinfer.core.backends.tensorrt", "TensorRtBackend", "edgeinfer[tensorrt]"),
}

#: model format -> backends that can load it, preferred first
BY_FORMAT: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime",),
    "tflite": ("litert",),
    "tensorrt": ("tensorrt",),
}


def parse_backend(spec: str) -> tuple[str, str | None]:
    """``"onnxruntime:cuda"`` -> ("onnxruntime", "cuda"); ``"auto"`` -> ("auto", None)."""
    name, _, device = spec.strip().lower().partition(":")
    if name != "auto" and name not in BACKENDS:
        raise BackendError(f"unknown backend {spec!r}",
                           f"use one of: auto, {', '.join(BACKENDS)} (optionally NAME:DEVICE, e.g. onnxruntime:cpu)")
    return name, device or None


def backend_class(name: str) -> type[Backend]:
    module_name, cls_name, extra = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r} is not installed ({exc.name or exc})", f"pip install '{extra}'") from exc
    return getattr(module, cls_name)


def choose(fmt: str, requested: str = "auto") -> str:
    name, _ = parse_backend(requested)
    if name == "auto":
        return BY_FORMAT[fmt][0]
    if fmt not in backend_class(name).formats:
        can = ", ".join(BY_FORMAT.get(fmt, ())) or "none"
        raise BackendError(f"backend {name!r} cannot load a {fmt} model", f"use --backend {can} or another model file")
    return name


def open_backend(model_path: Path, fmt: str, options: BackendOptions | None = None,
                 model_bytes: bytes | None = None) -> Backend:
    """Pick the backend for ``fmt`` (``options.name`` overrides) and load the model. ``model_bytes``: the model
    itself, decrypted in memory (``model_path`` then holds its ciphertext and only names it)."""
    options = options or BackendOptions()
    name, device = parse_backend(options.name)
    chosen = choose(fmt, options.name)
    if device and not options.device:
        options = options.model_copy(update={"device": device})
    cls = backend_class(chosen)
    if name == "auto":
        log.debug("auto-selected backend %s for a %s model", chosen, fmt)
    if model_bytes is None:
        backend = cls(model_path, options)
    elif not cls.loads_bytes:
        raise ModelError(f"backend {chosen} cannot load an encrypted model (it loads from files only)",
                         "deploy this model unencrypted, or use a backend that loads from memory")
    else:
        backend = cls(model_path, options, model_bytes=model_bytes)  # type: ignore[call-arg]
    log.info("backend: %s", backend.info.summary())
    return backend
