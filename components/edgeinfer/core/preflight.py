"""Would this config start? Deep checks without starting anything, for deployment validation.

Greengrass asks a component to validate a configuration before a deployment changes it
(SubscribeToValidateConfigurationUpdates): a configuration that passes the schema but cannot start (a
corrupt model, a decoder that does not fit, a camera file that is not there, a folder under a regular
file, a CA file missing) must FAIL the deployment with its reason, not be ACCEPTED and then break.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from .config import EdgeInferConfig
from .errors import ConfigError, EdgeInferError, ModelError, SourceError
from .paths import writable_problem
from .sources import STREAM_SCHEMES, open_source
from .staging import model_differs

log = logging.getLogger(__name__)


def preflight(cfg: EdgeInferConfig, running: EdgeInferConfig | None = None) -> None:
    """Raise the EdgeInferError ``cfg`` would fail with when applied. ``running``: the config that runs now
    (its model is not loaded a second time when the new config keeps it)."""
    for what, path in (("output.dir", cfg.output.dir), ("state_dir", str(cfg.resolved_state_dir()))):
        if path and (problem := writable_problem(Path(path), what, full_ok=True)):  # full: a fault, not a setting
            text, _, fix = problem.partition(" -> ")
            raise ConfigError(text, fix or f"point {what} at a writable folder")
    check_source(cfg)
    check_transport(cfg)
    if running is None or model_differs(running, cfg):
        check_model(cfg)


def check_model(cfg: EdgeInferConfig) -> None:
    """The model gate, as a device runs it before activation: verified, loaded, warmed up, decoded."""
    from .runner import load_configured

    quick = cfg.model_copy(update={"model": cfg.model.model_copy(update={"warmup_runs": 1})})  # the gate needs one
    try:
        model, _ = load_configured(quick)
    except EdgeInferError as exc:
        raise ModelError(f"model {cfg.model.path or '(demo)'} would not activate: {exc.problem}", exc.fix) from exc
    model.close()


def check_source(cfg: EdgeInferConfig) -> None:
    """Files must exist and read; live URIs must be well-formed (a camera may come up after the device)."""
    uri = (cfg.source.uri or "").strip()
    if not uri or uri.isdigit():
        return
    if uri.startswith(STREAM_SCHEMES):
        parts = urlsplit(uri)
        if not parts.hostname:
            raise SourceError(f"source {uri!r} has no host", "write it as scheme://host[:port]/path")
        try:
            _ = parts.port
        except ValueError as exc:
            raise SourceError(f"source {uri!r} has an invalid port", "write it as scheme://host[:port]/path") from exc
        return
    if uri.startswith("gst:"):
        if not uri[4:].strip():
            raise SourceError("source 'gst:' names no pipeline", "write gst:<a GStreamer pipeline ending in appsink>")
        return
    if cfg.source.live:  # a file replayed as a camera: it must still be there
        if not Path(uri).expanduser().exists():
            raise SourceError(f"source {uri!r} does not exist", "deploy the file first, or fix source.uri")
        return
    source = open_source(uri, cfg.source.live, cfg.source.loop, cfg.source.fps)
    source.close()


def check_transport(cfg: EdgeInferConfig) -> None:
    """The configured transport parses and its files (CA, certificate, key) are there; nothing connects."""
    from .telemetry.registry import NONE, open_transport, scheme_of

    scheme = scheme_of(cfg.telemetry.transport)
    if scheme in (NONE, "greengrass", "iotedge"):  # the adapters' own transports need no checking here
        return
    transport = open_transport(cfg.telemetry.transport, cfg.telemetry, cfg.device_id)
    if transport is not None:
        transport.close()
