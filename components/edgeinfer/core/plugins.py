"""Plugins found by entry point, and the one table that turns a missing module into an install hint.

Backends register under ``edgeinfer.backends`` and telemetry transports under ``edgeinfer.transports``
(``[project.entry-points."edgeinfer.backends"]`` in a distribution's pyproject.toml). edgeinfer's own are
declared the same way as a third party's, so the core names no adapter module: the MQTT, Greengrass and
IoT Edge transports are found because their distribution says so. A plugin's module is imported on first
use only; its runtime (onnxruntime, LiteRT, awscrt, ...) when the plugin is opened.

A plugin is code the device's operator installed: it is trusted like the rest of the install. Remote
settings only pick among the installed names.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)

BACKENDS = "edgeinfer.backends"
TRANSPORTS = "edgeinfer.transports"

#: module (or dotted package prefix) -> how to get it. The one place an ImportError becomes advice: backends,
#: transports, the cloud commands and the optional features all ask here with the module they tried.
INSTALL_HINTS: dict[str, str] = {
    "onnxruntime": "pip install onnxruntime (part of the base install: pip install edgeinfer); "
                   "for CUDA/TensorRT see docs/backends.md ([gpu])",
    "cv2": "pip install opencv-python-headless (part of the base install: pip install edgeinfer)",
    "ai_edge_litert": "pip install 'edgeinfer[tflite]'",
    "tensorrt": "pip install 'edgeinfer[tensorrt]' with NVIDIA's index for the TensorRT 10 wheels "
                "(docs/backends.md), or JetPack 6 on Jetson; or run the .onnx with --backend onnxruntime",
    "cuda": "pip install cuda-python (with TensorRT: 'edgeinfer[tensorrt]')",
    "awscrt": "pip install 'edgeinfer[aws]'",
    "awsiot": "pip install 'edgeinfer[aws]'",
    "boto3": "pip install 'edgeinfer[aws-cloud]' (on a device, for the SageMaker fallback and S3 captures: "
             "'edgeinfer[hybrid-aws]')",
    "botocore": "pip install 'edgeinfer[aws-cloud]'",
    "azure.iot.device": "pip install 'edgeinfer[azure]'",
    "paho": "pip install 'edgeinfer[azure]'",
    "requests_unixsocket": "pip install 'edgeinfer[azure]'",
    "azure.iot.hub": "pip install 'edgeinfer[azure-cloud]'",
    "azure.ai.ml": "pip install 'edgeinfer[azureml]'",
    "azure.core": "pip install 'edgeinfer[azureml]'",
    "azure.storage": "pip install 'edgeinfer[hybrid-azure]'",
    "azure.identity": "pip install 'edgeinfer[azureml]'",
    "matplotlib": "pip install 'edgeinfer[plots]'",
    "tflite2onnx": "pip install 'edgeinfer[demo]'",
    "onnx": "pip install 'edgeinfer[demo]'",
    "skimage": "pip install 'edgeinfer[demo]'",
}


def install_hint(module: str | None) -> str:
    """What to install for ``module`` (the module an import tried, or an ImportError's ``name``), by its
    longest known dotted prefix."""
    parts = (module or "").split(".")
    for n in range(len(parts), 0, -1):
        hint = INSTALL_HINTS.get(".".join(parts[:n]))
        if hint:
            return hint
    if module:
        return f"install the python module {parts[0]!r} into the environment edgeinfer runs in"
    return "reinstall edgeinfer with the extra for this feature (README: Install on a device)"


@cache
def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            log.warning("plugin %s in %s is declared twice (%s and %s): using the first", ep.name, group,
                        found[ep.name].value, ep.value)
            continue
        found.setdefault(ep.name, ep)
    return found


def names(group: str) -> list[str]:
    """The plugin names installed in ``group``, sorted."""
    return sorted(_entry_points(group))


def load(group: str, name: str) -> Any:
    """The object ``name`` points at (a class). KeyError when nothing of that name is installed; an
    ImportError from the plugin's own module is left to the caller, which knows what it was loading."""
    return _entry_points(group)[name].load()


def load_configured(group: str, kind: str, what: str) -> Any:
    """The plugin a configuration names by ``type`` (a capture store, a fallback client): ConfigError that says
    what to install when it is not there or its module cannot import. ``what``: how the error names it."""
    from .errors import ConfigError

    try:
        return load(group, kind)
    except KeyError:
        raise ConfigError(f"no {what} for type {kind!r} is installed",
                          "reinstall edgeinfer (pip install edgeinfer) so its entry points are registered") from None
    except ImportError as exc:
        raise ConfigError(f"the {kind} {what} cannot load: {exc}", install_hint(exc.name)) from exc
