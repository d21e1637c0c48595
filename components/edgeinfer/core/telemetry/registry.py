"""Transport registry: URI scheme -> the transport installed under that name, imported on first use.

``edgeinfer.core`` never imports a vendor SDK and names no adapter: transports are ``edgeinfer.transports``
entry points (core/plugins.py). edgeinfer declares stdout and file (core), mqtt/mqtts (``edgeinfer.mqtt``,
awscrt), greengrass (IPC) and iotedge (module outputs); another package can add its own scheme.
"""

from __future__ import annotations

from typing import cast

from .. import plugins
from ..errors import ConfigError, TelemetryError
from .config import TelemetryConfig
from .transport import Transport

NONE = "none"
_USAGE = "none, stdout, file:PATH, mqtt://host:port, mqtts://host:port?ca=..&cert=..&key=.."


def scheme_of(uri: str) -> str:
    uri = uri.strip()
    return uri.split(":", 1)[0].lower() if ":" in uri else uri.lower()


def transport_class(scheme: str) -> type[Transport]:
    try:
        cls = plugins.load(plugins.TRANSPORTS, scheme)
    except KeyError:
        others = sorted(set(plugins.names(plugins.TRANSPORTS)) - {"stdout", "file", "mqtt", "mqtts"})
        raise ConfigError(f"unknown telemetry transport {scheme!r}",
                          f"use one of: {_USAGE}" + (f", or {', '.join(others)}" if others else "")) from None
    except ImportError as exc:
        raise TelemetryError(f"telemetry transport {scheme!r} cannot be loaded: python module {exc.name or exc} "
                             "is missing", plugins.install_hint(exc.name)) from exc
    return cast(type[Transport], cls)


def open_transport(uri: str, cfg: TelemetryConfig, device_id: str) -> Transport | None:
    """The transport for ``uri``, or None for ``none`` (telemetry off)."""
    scheme = scheme_of(uri)
    if scheme == NONE:
        return None
    cls = transport_class(scheme)
    try:
        return cls.from_uri(uri.strip(), cfg, device_id)
    except ImportError as exc:  # an SDK the transport imports when it opens
        raise TelemetryError(f"telemetry transport {scheme!r} cannot start: python module {exc.name or exc} "
                             "is missing", plugins.install_hint(exc.name)) from exc
