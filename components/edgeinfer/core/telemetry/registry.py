"""Lazy transport registry: URI scheme -> implementation, each module imported on first use.

``edgeinfer.core`` never imports a vendor SDK: the MQTT transport (awscrt) lives in
``edgeinfer.mqtt`` and is named here only as a string. Adapters register more schemes by adding
rows (Greengrass IPC, IoT Edge outputs).
"""

from __future__ import annotations

import importlib
from typing import cast

from ..errors import ConfigError, TelemetryError
from .config import TelemetryConfig
from .transport import Transport

#: scheme -> (module, class, what installs its dependencies)
TRANSPORTS: dict[str, tuple[str, str, str]] = {
    "stdout": ("edgeinfer.core.telemetry.stdio", "StdoutTransport", "edgeinfer (base install)"),
    "file": ("edgeinfer.core.telemetry.stdio", "FileTransport", "edgeinfer (base install)"),
    "mqtt": ("edgeinfer.mqtt.transport", "MqttTransport", "edgeinfer[aws]"),
    "mqtts": ("edgeinfer.mqtt.transport", "MqttTransport", "edgeinfer[aws]"),
    "greengrass": ("edgeinfer.greengrass.transport", "IpcTransport", "edgeinfer[aws]"),
    "iotedge": ("edgeinfer.azure.transport", "ModuleOutputTransport", "edgeinfer[azure]"),
}
NONE = "none"


def scheme_of(uri: str) -> str:
    uri = uri.strip()
    return uri.split(":", 1)[0].lower() if ":" in uri else uri.lower()


def transport_class(scheme: str) -> type[Transport]:
    if scheme not in TRANSPORTS:
        raise ConfigError(f"unknown telemetry transport {scheme!r}",
                          f"use one of: {NONE}, stdout, file:PATH, mqtt://host:port, mqtts://host:port?ca=..&cert=..&key=..")
    module_name, cls_name, extra = TRANSPORTS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TelemetryError(f"telemetry transport {scheme!r} is not installed ({exc.name or exc})",
                             f"pip install '{extra}'") from exc
    return cast(type[Transport], getattr(module, cls_name))


def open_transport(uri: str, cfg: TelemetryConfig, device_id: str) -> Transport | None:
    """The transport for ``uri``, or None for ``none`` (telemetry off)."""
    scheme = scheme_of(uri)
    if scheme == NONE:
        return None
    return transport_class(scheme).from_uri(uri.strip(), cfg, device_id)
