"""Building the pieces of a run before anything that runs is touched (the first half of a transactional update).

``stage(new, current)`` loads and gates the model, opens the source, checks the output and state folders and
opens the telemetry transport — only what differs from ``current`` — and returns them as ``Staged``. Any
failure closes what was built and raises one EdgeInferError: the running pieces were never touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .config import EdgeInferConfig
from .errors import EdgeInferError
from .model import LoadedModel
from .modelpkg.keys import KeySource
from .paths import ensure_dir, private_dir
from .progress import Progress, no_progress
from .runner import demo_source, load_configured
from .sinks.base import Sink
from .sinks.files import file_sinks
from .sources import Source
from .streams.mux import MultiSource
from .streams.opening import close_all, open_changed, open_configured_source, open_streams

log = logging.getLogger(__name__)

MODEL_KEYS = ("path", "task", "warmup_runs")
TELEMETRY_SECTIONS = ("telemetry", "rules", "hooks", "device_id", "state_dir")


def model_differs(old: EdgeInferConfig, new: EdgeInferConfig) -> bool:
    return (any(getattr(new.model, k) != getattr(old.model, k) for k in MODEL_KEYS) or new.backend != old.backend
            or new.pipeline.max_batch != old.pipeline.max_batch or new.trust != old.trust)


def _stream_rules(cfg: EdgeInferConfig) -> bool:
    return any(s.rules for s in cfg.sources)


def telemetry_differs(old: EdgeInferConfig, new: EdgeInferConfig) -> bool:
    """A stream's own rules are applied in place (the rule engine takes them); whether any exist decides, with the
    top-level rules and the transport, whether telemetry runs at all."""
    return any(getattr(new, k) != getattr(old, k) for k in TELEMETRY_SECTIONS) or (
        _stream_rules(new) != _stream_rules(old))


def streams_in_place(old: EdgeInferConfig, new: EdgeInferConfig) -> bool:
    """Both run ``sources:`` lists: streams are added, removed and re-tuned in the running multiplexer."""
    return bool(old.sources) and bool(new.sources)


def pipeline_differs(old: EdgeInferConfig, new: EdgeInferConfig) -> bool:
    """Anything but the model (which can be swapped between frames), the streams of a ``sources:`` list (changed in
    place) and the log level."""
    sources = new.sources != old.sources and not streams_in_place(old, new)
    return (new.source != old.source or sources or new.output != old.output or new.max_frames != old.max_frames
            or new.pipeline != old.pipeline or telemetry_differs(old, new)
            or (new.shadow.model is None) != (old.shadow.model is None)  # the frames' images kept for a shadow
            or _hybrid(new) != _hybrid(old))  # ... and for the cloud fallback and captures


def _hybrid(cfg: EdgeInferConfig) -> bool:
    return cfg.fallback.enabled or cfg.captures.enabled


def wants_telemetry(cfg: EdgeInferConfig, injected: Any | None) -> bool:
    """Telemetry runs when a transport is configured or passed in, or when there are rules to act on."""
    return injected is not None or cfg.telemetry.transport != "none" or bool(cfg.rules) or _stream_rules(cfg)


@dataclass
class Parts:
    """What one run is made of. The run session owns it; pipelines come and go over it."""

    config: EdgeInferConfig
    model: LoadedModel
    source: Source
    files: list[Sink]
    telemetry: Any | None = None  # TelemetryService
    timings: dict[str, float] = field(default_factory=dict)

    def close(self, drain_timeout_s: float = 0.0) -> int:
        left = 0
        if self.telemetry is not None:
            left = self.telemetry.drain(drain_timeout_s)
            self.telemetry.close()
            self.telemetry = None
        self.source.close()
        self.model.close()
        return left


@dataclass
class Staged:
    """New pieces, built and checked, not yet running. ``None`` = keep the running one."""

    config: EdgeInferConfig
    model: LoadedModel | None = None
    source: Source | None = None
    streams: dict[str, Source] | None = None  # for the running multiplexer: its new and reopened streams
    files: list[Sink] | None = None
    transport: Any | None = None  # a configured transport for new telemetry, opened (validated) not connected
    new_telemetry: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def discard(self) -> None:
        for close in (getattr(self.source, "close", None), getattr(self.model, "close", None),
                      getattr(self.transport, "close", None)):
            if close is not None:
                try:
                    close()
                except Exception:  # cleaning up after a failure must not hide the failure
                    log.exception("could not close a staged piece")
        close_all((self.streams or {}).values())
        self.model = self.source = self.transport = self.streams = None


def stage_telemetry(st: Staged, injected_transport: Any | None) -> Staged:
    """Into ``st``: whether ``st.config`` wants telemetry, its state dir proven (0700), its transport opened."""
    cfg = st.config
    st.new_telemetry = wants_telemetry(cfg, injected_transport)
    if st.new_telemetry:
        state = ensure_dir(cfg.resolved_state_dir(), "state_dir", full_ok=True)  # the outbox drops and counts
        private_dir(state)  # 0700: the outbox, last-good documents and models are the device's alone
        if injected_transport is None:
            from .telemetry.registry import open_transport

            st.transport = open_transport(cfg.telemetry.transport, cfg.telemetry, cfg.device_id)
    return st


def open_configured(cfg: EdgeInferConfig, progress: Progress = no_progress, require_connected: bool = False
                    ) -> Source:
    """The source ``cfg`` names: its ``sources:`` streams, its ``source:``, or the demo frames. At start a camera that
    is not there yet is waited for; an update to a new one must open now (``require_connected``)."""
    if cfg.sources:
        return open_streams(cfg.sources, require_connected)
    return open_configured_source(cfg.source, require_connected) if cfg.source.uri else demo_source(progress)


def stage(new: EdgeInferConfig, current: Parts | None, injected_transport: Any | None = None,
          progress: Progress = no_progress, reload_model: bool = False, key_source: KeySource | None = None) -> Staged:
    """Build what ``new`` needs that ``current`` does not already run (and the model again when
    ``reload_model``). Raises EdgeInferError and changes nothing when a piece cannot be built."""
    old = current.config if current is not None else None
    st = Staged(new)
    try:
        if old is None or new.output != old.output:
            if new.output.dir:
                ensure_dir(new.output.dir, "output.dir", full_ok=True)  # the sinks pause while it is full
            st.files = list(file_sinks(new.output))
        if old is None or telemetry_differs(old, new):
            stage_telemetry(st, injected_transport)
        if old is None or reload_model or model_differs(old, new):
            running = current.model.package.manifest if current is not None else None  # replay protection
            st.model, st.timings = load_configured(new, progress, running, key_source)  # trusted, loaded: the gate
        mux = current.source if current is not None and isinstance(current.source, MultiSource) else None
        if old is not None and mux is not None and streams_in_place(old, new):
            if new.sources != old.sources:
                st.streams = open_changed(new.sources, mux)
        elif old is None or new.source != old.source or new.sources != old.sources:
            st.source = open_configured(new, progress, require_connected=old is not None)
    except EdgeInferError:
        st.discard()
        raise
    except BaseException as exc:
        st.discard()
        if not isinstance(exc, Exception):
            raise  # anything else building a piece is still a one-line refusal
        raise EdgeInferError(f"could not prepare the run: {type(exc).__name__}: {exc}",
                             "see the log for the cause") from exc
    return st
