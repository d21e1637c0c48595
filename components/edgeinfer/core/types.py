"""Plain data passed between pipeline stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Frame:
    """One image from a source. ``image`` is HxWx3 uint8 in BGR order (OpenCV's)."""

    source: str
    index: int
    image: np.ndarray
    ts: float  # wall-clock capture time, seconds since the epoch
    t_read: float = 0.0  # perf_counter() when the frame was read
    stream: str | None = None  # the stream's id when several run (``sources:``)
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels: the part of the image the model sees
    min_score: float | None = None  # the stream's own score threshold, above the model's (applied after decoding)


@dataclass(slots=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the original frame
    keypoints: list[tuple[float, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "label": self.label,
            "score": round(float(self.score), 4),
            "box": [round(float(v), 1) for v in self.box],
        }
        if self.keypoints:
            d["keypoints"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints]
        return d

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@dataclass(slots=True)
class Classification:
    label: str
    class_id: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(float(self.score), 4)}


@dataclass(slots=True)
class Segmentation:
    """Per-pixel class ids at the original frame size, and each label's share of the frame."""

    mask: np.ndarray  # HxW int32 class ids
    areas: dict[str, float]  # label -> fraction of the frame (0..1)

    def to_dict(self) -> dict[str, Any]:
        return {"areas": {k: round(float(v), 4) for k, v in self.areas.items()}}


@dataclass(slots=True)
class TaskOutput:
    """What a decoder returns for one frame; only the fields of its task are filled."""

    detections: list[Detection] = field(default_factory=list)
    classes: list[Classification] = field(default_factory=list)
    segmentation: Segmentation | None = None


@dataclass(slots=True)
class FrameResult:
    """One frame's outcome, handed to sinks, rules and telemetry."""

    source: str
    index: int
    ts: float
    width: int
    height: int
    task: str
    output: TaskOutput
    timings_ms: dict[str, float]
    image: np.ndarray | None = None  # the original frame, for annotation sinks
    stream: str | None = None  # the stream's id when several run (``sources:``)
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels: the region the model saw

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stream": self.stream} if self.stream is not None else {}
        d |= {
            "source": self.source,
            "frame": self.index,
            "ts": round(self.ts, 3),
            "width": self.width,
            "height": self.height,
        }
        if self.task == "detection":
            d["detections"] = [x.to_dict() for x in self.output.detections]
        elif self.task == "classification":
            d["classes"] = [x.to_dict() for x in self.output.classes]
        elif self.task == "segmentation" and self.output.segmentation is not None:
            d["segmentation"] = self.output.segmentation.to_dict()
        if self.roi is not None:
            d["roi"] = list(self.roi)
        d["timings_ms"] = {k: round(v, 3) for k, v in self.timings_ms.items()}
        return d
