"""Which frames go to the cloud, and what part of them.

``trigger(result, cfg, degraded)``: ``"uncertain"`` when a detection's (or the top class's) score lies in its
label's band, ``"degraded"`` when the local backend runs degraded and ``on_degraded`` is set, else None.
``"unavailable"`` is never decided here: the session offers frames so while no local model can run
(core/fallback/bridge.py).
``crop_box``: the union of the uncertain boxes, grown by ``crop_margin`` and clipped to the frame.
"""

from __future__ import annotations

from typing import Literal

from ..types import Detection, FrameResult
from .config import FallbackConfig

Trigger = Literal["uncertain", "degraded", "unavailable"]
Box = tuple[int, int, int, int]


def uncertain(result: FrameResult, cfg: FallbackConfig) -> list[Detection]:
    """The detections whose scores lie in their label's band."""
    out = []
    for d in result.output.detections:
        band = cfg.band_for(d.label)
        if band.low <= d.score < band.high:
            out.append(d)
    return out


def trigger(result: FrameResult, cfg: FallbackConfig, degraded: bool) -> Trigger | None:
    if uncertain(result, cfg):
        return "uncertain"
    classes = result.output.classes
    if classes:
        top = max(classes, key=lambda c: c.score)
        band = cfg.band_for(top.label)
        if band.low <= top.score < band.high:
            return "uncertain"
    if degraded and cfg.on_degraded:
        return "degraded"
    return None


def crop_box(result: FrameResult, cfg: FallbackConfig) -> Box | None:
    """The region to send when ``cfg.crop``: None = the whole frame (no uncertain boxes, or crop off)."""
    boxes = [d.box for d in uncertain(result, cfg)] if cfg.crop else []
    if not boxes:
        return None
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    mx, my = (x2 - x1) * cfg.crop_margin, (y2 - y1) * cfg.crop_margin
    box = (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(result.width, int(x2 + mx + 1)),
           min(result.height, int(y2 + my + 1)))
    return box if box[2] - box[0] >= 2 and box[3] - box[1] >= 2 else None
