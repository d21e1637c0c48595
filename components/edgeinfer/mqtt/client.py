"""Build the awscrt MQTT5 client for an endpoint (the one place that knows awscrt's options).

Choices, each for the outbox's sake:
* a raw ``awscrt.mqtt5.Client`` for both mqtt:// and mqtts:// (the SDK builder always adds TLS);
  mutual TLS from the ca/cert/key files, ALPN ``x-amzn-mqtt-ca`` when the port is 443;
* clean sessions and ``FAIL_ALL_ON_DISCONNECT``: a publish in flight when the link drops fails
  at once and the outbox sends it again after reconnecting; the client never queues on its own;
* reconnect backoff from ``telemetry.retry`` with full jitter; metrics off (they rewrite the
  CONNECT username).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from awscrt import io, mqtt5
from awscrt.exceptions import AwsCrtError

from ..core.errors import ConfigError
from ..core.telemetry.config import TelemetryConfig
from .endpoint import MqttEndpoint


@dataclass(frozen=True, slots=True)
class ClientHooks:
    """Lifecycle callbacks; they run on CRT threads and must return quickly."""

    on_success: Callable[[mqtt5.LifecycleConnectSuccessData], None]
    on_failure: Callable[[mqtt5.LifecycleConnectFailureData], None]
    on_disconnect: Callable[[mqtt5.LifecycleDisconnectData], None]
    on_stopped: Callable[[mqtt5.LifecycleStoppedData], None]


ClientFactory = Callable[[MqttEndpoint, TelemetryConfig, ClientHooks], Any]


def tls_context(ep: MqttEndpoint) -> io.ClientTlsContext:
    try:
        if ep.cert and ep.key:
            opts = io.TlsContextOptions.create_client_with_mtls_from_path(str(ep.cert), str(ep.key))
        else:
            opts = io.TlsContextOptions()
        if ep.ca:
            opts.override_default_trust_store_from_path(None, str(ep.ca))
        if ep.port == 443:
            opts.alpn_list = ["x-amzn-mqtt-ca"]
        return io.ClientTlsContext(opts)
    except (AwsCrtError, ValueError) as exc:
        raise ConfigError(f"cannot use the TLS files ca={ep.ca} cert={ep.cert} key={ep.key}: {exc}",
                          "pass PEM files: the CA bundle, the device certificate and its private key") from exc


def build_client(ep: MqttEndpoint, cfg: TelemetryConfig, hooks: ClientHooks) -> mqtt5.Client:
    sock = io.SocketOptions()
    sock.connect_timeout_ms = ep.connect_timeout_ms
    options = mqtt5.ClientOptions(
        host_name=ep.host,
        port=ep.port,
        socket_options=sock,
        tls_ctx=tls_context(ep) if ep.tls else None,
        connect_options=mqtt5.ConnectPacket(client_id=ep.client_id, keep_alive_interval_sec=ep.keepalive_s),
        session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
        offline_queue_behavior=mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT,
        retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
        min_reconnect_delay_ms=max(1, int(cfg.retry.initial_s * 1000)),
        max_reconnect_delay_ms=max(1, int(cfg.retry.max_s * 1000)),
        connack_timeout_ms=max(1000, ep.connect_timeout_ms),
        ack_timeout_sec=max(1, math.ceil(cfg.send_timeout_s)),
        on_lifecycle_event_connection_success_fn=hooks.on_success,
        on_lifecycle_event_connection_failure_fn=hooks.on_failure,
        on_lifecycle_event_disconnection_fn=hooks.on_disconnect,
        on_lifecycle_event_stopped_fn=hooks.on_stopped,
        disable_metrics=True,
    )
    return mqtt5.Client(options)
