"""What a configuration change does to the running streams, and what they report: the session's side of
``sources:`` (core/session.py calls these; the multiplexer itself is mux.py)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..model import LoadedModel
from ..sources import Source
from .mux import MultiSource
from .opening import close_all, stream_thresholds

if TYPE_CHECKING:
    from ..config import EdgeInferConfig
    from ..pipeline import Pipeline
    from ..staging import Parts, Staged

log = logging.getLogger(__name__)
HEALTH_KEYS = ("state", "reason", "frames", "dropped", "bad", "retries")


def apply_thresholds(model: LoadedModel, cfg: EdgeInferConfig, source: Source) -> None:
    """The model at the configured threshold, or the lowest a stream asks for; each stream's own above it."""
    base = model.package.manifest.decoder
    common, own = stream_thresholds(getattr(base, "score_threshold", None), cfg.model.score_threshold, cfg.sources)
    model.decoder = base.with_threshold(common) if common is not None else base
    if isinstance(source, MultiSource):
        source.set_min_scores(own)


def update_streams(parts: Parts, old: EdgeInferConfig, new: EdgeInferConfig, staged: Staged,
                   rules_in_place: bool) -> None:
    """The running multiplexer's streams as ``new`` lists them: added, removed, reopened or re-tuned in place
    (the other streams go on); with ``rules_in_place`` (telemetry is kept), the streams' own rules are handed to
    the rule engine."""
    mux = parts.source
    if isinstance(mux, MultiSource) and new.sources and new.sources != old.sources and staged.source is None:
        retired = mux.update(new.sources, staged.streams or {})
        staged.streams = None  # the multiplexer owns them now
        close_all(retired)
        log.info("streams now %s", ", ".join(mux.ids))
    if parts.telemetry is not None and rules_in_place:
        parts.telemetry.set_stream_rules(new)


def stream_states(source: Source, pipeline: Pipeline | None) -> dict[str, dict[str, Any]] | None:
    """Each stream of ``sources:``: its state and reason, and what ``pipeline`` made of its frames (None with one
    ``source:``)."""
    if not isinstance(source, MultiSource):
        return None
    states = source.states()
    if pipeline is None:
        return {sid: {**st, "frames": 0} for sid, st in states.items()}
    return pipeline.streams.summary(states, time.perf_counter() - pipeline.started_at)


def health_view(streams: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The ``streams`` of a health event and ``status()``: the keys the event schema has."""
    if streams is None:
        return {}
    return {"streams": {sid: {k: st[k] for k in HEALTH_KEYS if k in st} for sid, st in streams.items()}}
