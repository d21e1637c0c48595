"""``serve:``, the device's HTTP endpoints: where they listen and what "ready" and "alive" mean.

The whole section is local-only (core/scope.py): a Greengrass deployment or an IoT Edge twin that sets any
of it is refused, so the cloud can never open a listener, let alone one on 0.0.0.0.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_LISTEN = "127.0.0.1:9464"


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); ValueError when it is not one."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN}, [::1]:9464)")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is outside 0 .. 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # raises ValueError with its own message
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    return host, port


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool | None = Field(default=None, description="Serve /metrics, /healthz, /readyz and the status page. "
                                 "None = the face decides: off for `edgeinfer run` (on with --serve), on in the "
                                 "Greengrass component and the IoT Edge module")
    listen: str = Field(default=DEFAULT_LISTEN, max_length=300,
                        description="HOST:PORT to listen on ([v6]:PORT for IPv6; port 0 = any free port). Only "
                        "this device's users reach 127.0.0.1; reach the page over an SSH tunnel "
                        "(docs/observability.md). 0.0.0.0 exposes it to the network")
    allowed_hosts: list[str] = Field(default_factory=list, max_length=64,
                                     description="Host names a browser may call the server by, besides IP "
                                     "addresses and localhost (a DNS-rebinding guard)")
    ready_within_s: float = Field(default=30.0, ge=1, le=86_400,
                                  description="/readyz: a frame must have been inferred this recently (at least "
                                  "3 frame intervals of source.fps), unless the source is known to be waiting")
    stall_s: float = Field(default=300.0, ge=10, le=86_400,
                           description="/healthz: a running pipeline with no frame for this long is stalled "
                           "(at least 10 frame intervals of source.fps); a waiting source is not stalled")
    frame_interval_s: float = Field(default=1.0, ge=0.1, le=60,
                                    description="The status page's frame refresh; the annotated JPEG is made at "
                                    "most this often, however many viewers")
    chart_window_s: int = Field(default=600, ge=60, le=3600,
                                description="The status page's detections chart covers this many seconds")
    linger_s: float = Field(default=0.0, ge=0, le=3600,
                            description="`edgeinfer run`: keep serving this long after a finite source ended "
                            "(summary.json written), for a last look or scrape")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    def address(self) -> tuple[str, int]:
        return split_listen(self.listen)
