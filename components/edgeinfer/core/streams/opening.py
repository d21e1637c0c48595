"""Opening the streams of ``sources:`` (all at start, only the changed ones on an update) and the score thresholds
the shared model and each stream run at."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..errors import EdgeInferError
from ..sources import Source, open_source
from .config import SourceConfig, StreamConfig
from .mux import MultiSource

log = logging.getLogger(__name__)


def open_configured_source(cfg: SourceConfig, require_connected: bool = False) -> Source:
    """The source ``cfg`` names (its ``uri`` set). A camera that is not there yet is waited for (its stream reports
    ``waiting``) unless ``require_connected``."""
    assert cfg.uri is not None
    return open_source(cfg.uri, cfg.live, cfg.loop, cfg.fps, require_connected=require_connected)


def open_stream(cfg: StreamConfig, require_connected: bool = False) -> Source:
    """One stream's source; a refusal names the stream."""
    try:
        return open_configured_source(cfg, require_connected)
    except EdgeInferError as exc:
        raise type(exc)(f"stream {cfg.id}: {exc.problem}", exc.fix) from exc


def open_streams(streams: list[StreamConfig], require_connected: bool = False) -> MultiSource:
    """Every stream opened (all or none: one that cannot open closes the others and raises)."""
    opened = _open_each(streams, require_connected)
    return MultiSource([(c, opened[c.id]) for c in streams], opener=open_stream)


def open_changed(new: list[StreamConfig], running: MultiSource) -> dict[str, Source]:
    """The sources an update needs: streams that are new, or whose URI or pacing changed (an update must open a
    camera now: a dead one refuses the update and the running streams stay)."""
    changed = []
    for c in new:
        old = running.config_of(c.id)
        if old is None or not c.opens_like(old):
            changed.append(c)
    return _open_each(changed, require_connected=True)


def _open_each(streams: Iterable[StreamConfig], require_connected: bool) -> dict[str, Source]:
    opened: dict[str, Source] = {}
    try:
        for c in streams:
            opened[c.id] = open_stream(c, require_connected)
    except BaseException:
        close_all(opened.values())
        raise
    return opened


def close_all(sources: Iterable[Source]) -> None:
    for s in sources:
        try:
            s.close()
        except Exception:  # closing the rest matters more than this one's failure
            log.exception("could not close source %s", s.uri)


def stream_thresholds(package: float | None, configured: float | None, streams: list[StreamConfig]
                      ) -> tuple[float | None, dict[str, float | None]]:
    """(the model's threshold, each stream's own above it). The model runs at the lowest threshold any stream asks
    for; a stream whose threshold is higher drops the rest after decoding (NMS keeps a box by the higher-scoring
    ones only, so this equals running the model at that stream's threshold). ``package``: the package decoder's
    threshold (None: its task has none, nothing to apply)."""
    if package is None:
        return None, {}
    common = configured if configured is not None else package
    own = {s.id: s.score_threshold if s.score_threshold is not None else common for s in streams}
    model = min([common, *own.values()])
    return (model if configured is not None or model != package else None,
            {sid: t if t > model else None for sid, t in own.items()})
