"""Backend registry: the backends installed as ``edgeinfer.backends`` entry points, each imported on first use.

A box without TensorRT never imports it; a missing runtime is a one-line error that says what to install
(``core.plugins.install_hint``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import plugins
from ..errors import BackendError, ModelError
from .base import Backend, BackendOptions

log = logging.getLogger(__name__)

#: the runtime module behind each format of edgeinfer's own backends, for the hint when none is installed
_RUNTIME = {"onnx": "onnxruntime", "tflite": "ai_edge_litert", "tensorrt": "tensorrt"}


def installed() -> list[str]:
    """Backend names installed (entry points of the ``edgeinfer.backends`` group)."""
    return plugins.names(plugins.BACKENDS)


def parse_backend(spec: str) -> tuple[str, str | None]:
    """``"onnxruntime:cuda"`` -> ("onnxruntime", "cuda"); ``"auto"`` -> ("auto", None)."""
    name, _, device = spec.strip().lower().partition(":")
    if name != "auto" and name not in installed():
        raise BackendError(f"unknown backend {spec!r}",
                           f"use one of: auto, {', '.join(installed())} (optionally NAME:DEVICE, e.g. onnxruntime:cpu)")
    return name, device or None


def backend_class(name: str) -> type[Backend]:
    try:
        cls = plugins.load(plugins.BACKENDS, name)
    except KeyError:
        raise BackendError(f"unknown backend {name!r}", f"use one of: auto, {', '.join(installed())}") from None
    except ImportError as exc:
        raise BackendError(f"backend {name!r} cannot be loaded: python module {exc.name or exc} is missing",
                           plugins.install_hint(exc.name)) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend plugin {name!r} is not a Backend class", "reinstall the package that provides it")
    return cls


def for_format(fmt: str) -> list[str]:
    """Installed backends that load ``fmt``, preferred first (lower ``Backend.rank``, then name). A plugin
    whose own module does not import is left out (it is named when asked for by name)."""
    able: list[tuple[int, str]] = []
    for name in installed():
        try:
            cls = backend_class(name)
        except BackendError as exc:
            log.debug("backend %s skipped for %s models: %s", name, fmt, exc)
            continue
        if fmt in cls.formats:
            able.append((cls.rank, name))
    return [name for _, name in sorted(able)]


def choose(fmt: str, requested: str = "auto") -> str:
    name, _ = parse_backend(requested)
    if name == "auto":
        able = for_format(fmt)
        if not able:
            raise BackendError(f"no installed backend loads {fmt} models", plugins.install_hint(_RUNTIME.get(fmt)))
        return able[0]
    if fmt not in backend_class(name).formats:
        can = ", ".join(for_format(fmt)) or "none"
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
    if model_bytes is not None and not cls.loads_bytes:
        raise ModelError(f"backend {chosen} cannot load an encrypted model (it loads from files only)",
                         "deploy this model unencrypted, or use a backend that loads from memory")
    try:
        backend = (cls(model_path, options) if model_bytes is None
                   else cls(model_path, options, model_bytes=model_bytes))  # type: ignore[call-arg]
    except ImportError as exc:  # the runtime, imported when the backend opens
        raise BackendError(f"backend {chosen!r} cannot start: python module {exc.name or exc} is missing",
                           plugins.install_hint(exc.name)) from exc
    log.info("backend: %s", backend.info.summary())
    return backend
