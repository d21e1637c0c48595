"""One entry of ``sources:``: a stream with its own id, URI, pacing, region of interest and overrides.

``source:`` stays the one-stream shorthand; ``sources:`` runs several streams through one model session.
The id names the stream everywhere: results, events, health, metrics, snapshots, annotated frames.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import scope
from ..errors import ConfigError
from ..rules.config import RuleConfig

#: safe as a file name, a Prometheus label value, an MQTT topic level and a key in an IoT Hub twin (no '.', '$')
STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_STREAMS = 64
_ID = re.compile(STREAM_ID)


class RegionOfInterest(BaseModel):
    """The part of each frame the model sees, as fractions of the frame (so a camera's resolution may change).
    Detections come back in whole-frame pixels; a segmentation mask covers the region."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    x: float = Field(default=0.0, ge=0.0, lt=1.0, description="Left edge, 0 to 1 of the frame's width")
    y: float = Field(default=0.0, ge=0.0, lt=1.0, description="Top edge, 0 to 1 of the frame's height")
    w: float = Field(default=1.0, gt=0.0, le=1.0, description="Width, 0 to 1 of the frame's width")
    h: float = Field(default=1.0, gt=0.0, le=1.0, description="Height, 0 to 1 of the frame's height")

    @model_validator(mode="after")
    def _inside(self) -> RegionOfInterest:
        if self.x + self.w > 1.0 + 1e-9 or self.y + self.h > 1.0 + 1e-9:
            raise ValueError("the region must lie inside the frame: x + w and y + h at most 1")
        return self

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) in pixels of a ``width`` x ``height`` frame, at least 1 pixel a side; None = the whole frame."""
        if self.x == 0.0 and self.y == 0.0 and self.w == 1.0 and self.h == 1.0:
            return None
        x0, y0 = min(int(self.x * width), width - 1), min(int(self.y * height), height - 1)
        x1, y1 = max(x0 + 1, min(width, round((self.x + self.w) * width))), max(
            y0 + 1, min(height, round((self.y + self.h) * height)))
        return x0, y0, x1 - x0, y1 - y0


class SourceConfig(BaseModel):
    """Where one stream's frames come from: the `source:` section, and the base of each `sources:` entry."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    uri: str | None = Field(default=None, description="Image, folder, video file, camera index, rtsp:// or "
                            "http:// URL, GStreamer pipeline (gst:...), or synthetic:WxH; None = demo frames",
                            json_schema_extra=scope.checked("source"))
    live: bool | None = Field(default=None, description="Drop stale frames (keep the latest). None = live for "
                              "cameras and streams, not for files")
    loop: bool = Field(default=False, description="Start a file source again at its end")
    fps: float | None = Field(default=None, ge=0.01, le=1000, description="Pace reading to this rate, 0.01 (one "
                              "frame every 100 s) to 1000 fps (None = as fast as the source gives)")


class StreamConfig(SourceConfig):
    uri: str = Field(description="Image, folder, video file, camera index, rtsp:// or http:// URL, GStreamer "
                     "pipeline (gst:...), or synthetic:WxH[:N]", json_schema_extra=scope.checked("source"))
    id: str = Field(pattern=STREAM_ID, description="The stream's name in results, events, health, metrics and "
                    "snapshots: letters, digits, '_' and '-' (at most 64)")
    roi: RegionOfInterest | None = Field(default=None, description="Only this part of each frame is inferred")
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0,
                                          description="This stream's score threshold (0 to 1) instead of the model's")
    rules: list[RuleConfig] | None = Field(default=None, max_length=256,
                                           description="This stream's rules instead of the top-level ones")

    def opens_like(self, other: StreamConfig) -> bool:
        """Whether the open source of ``other`` serves this one as is (the rest is applied in place)."""
        keys = set(SourceConfig.model_fields)  # what opens a source: the rest is applied in place
        return self.model_dump(include=keys) == other.model_dump(include=keys)


def unique_ids(streams: list[StreamConfig]) -> None:
    """Raises ValueError naming the first id used twice."""
    seen: set[str] = set()
    for i, s in enumerate(streams):
        if s.id in seen:
            raise ValueError(f"sources[{i}].id: {s.id!r} is used twice (each stream needs its own id)")
        seen.add(s.id)


def parse_cli_sources(values: list[str]) -> dict[str, Any]:
    """``--source`` given once or more: ``URI`` or ``ID=URI``. One bare URI is the ``source:`` shorthand; anything
    else is a ``sources:`` list (bare URIs get ids ``stream1``, ``stream2`` ... by position)."""
    if len(values) == 1 and not _named(values[0]):
        return {"source": {"uri": values[0]}}
    out = []
    for i, value in enumerate(values, 1):
        if (named := _named(value)) is not None:
            sid, uri = named
        else:
            sid, uri = f"stream{i}", value
        if not uri.strip():
            raise ConfigError(f"--source {value!r} names no URI", "write --source ID=URI or --source URI")
        out.append({"id": sid, "uri": uri})
    return {"sources": out}


def _named(value: str) -> tuple[str, str] | None:
    """``ID=URI`` split, when the part before the first '=' is a valid id and the URI is not a URL with a query."""
    head, sep, tail = value.partition("=")
    if not sep or "://" in head or "/" in head or not _ID.match(head):
        return None
    return head, tail
