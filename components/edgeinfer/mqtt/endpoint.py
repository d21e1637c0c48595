"""``mqtt://host:port`` and ``mqtts://host:port?ca=..&cert=..&key=..`` -> a validated endpoint.

Query keys: ``ca`` (CA bundle that signed the broker's certificate; AWS IoT Core: Amazon Root CA 1),
``cert`` + ``key`` (the device certificate and its private key, for mutual TLS), ``client_id``
(default: the device id, as IoT Core policies expect the thing name), ``keepalive`` (seconds),
``connect_timeout_ms``. The port is always explicit in the client (the SDK would pick 443 + ALPN).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.config import one_line
from ..core.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
QUERY_KEYS = {"ca", "cert", "key", "client_id", "keepalive", "connect_timeout_ms"}
_FIX = "use mqtt://host:port or mqtts://host:port?ca=CA.pem&cert=DEVICE.pem.crt&key=PRIVATE.pem.key"


class MqttEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["mqtt", "mqtts"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    client_id: str = Field(min_length=1, max_length=128)
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    keepalive_s: int = Field(default=60, ge=5, le=1200)
    connect_timeout_ms: int = Field(default=5000, ge=100, le=600_000)

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def describe(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_uri(uri: str, device_id: str) -> MqttEndpoint:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"telemetry transport {uri!r} is not an MQTT URI", _FIX)
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConfigError(f"telemetry transport {uri!r} has an invalid port", _FIX) from exc
    query = {k: unquote(v[-1]) for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    if unknown := set(query) - QUERY_KEYS:
        raise ConfigError(f"unknown MQTT URI option(s) {sorted(unknown)}", f"known: {', '.join(sorted(QUERY_KEYS))}")
    files = {k: Path(query[k]).expanduser() for k in ("ca", "cert", "key") if query.get(k)}
    if files and scheme == "mqtt":
        raise ConfigError(f"ca/cert/key given for plain {uri.split('?')[0]}", "use mqtts:// for TLS")
    if ("cert" in files) != ("key" in files):
        raise ConfigError("mutual TLS needs both cert= and key=", _FIX)
    for name, path in files.items():
        if not os.access(path, os.R_OK):
            raise ConfigError(f"MQTT {name} file {path} does not exist or is not readable",
                              f"pass an existing file as {name}=")
    try:
        return MqttEndpoint(scheme=scheme, host=parts.hostname, port=port,  # type: ignore[arg-type]
                            client_id=query.get("client_id") or device_id,
                            keepalive_s=query.get("keepalive", 60),  # type: ignore[arg-type]
                            connect_timeout_ms=query.get("connect_timeout_ms", 5000), **files)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid MQTT URI {uri!r}: {one_line(exc)}", _FIX) from exc
