"""Does one frame match a rule's condition? Pure functions over a FrameResult."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..types import FrameResult
from .config import Condition


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a rule can look at: a detection, a top class, or a segmentation label."""

    label: str
    score: float
    area: float | None = None  # share of the frame (0..1), None for classes
    box: tuple[float, float, float, float] | None = None


def items_of(result: FrameResult) -> list[Item]:
    out = result.output
    frame_area = float(result.width * result.height) or 1.0
    items = [Item(d.label, float(d.score), d.area / frame_area, tuple(float(v) for v in d.box))  # type: ignore[arg-type]
             for d in out.detections]
    items += [Item(c.label, float(c.score)) for c in out.classes]
    if out.segmentation is not None:
        items += [Item(label, 1.0, float(share)) for label, share in out.segmentation.areas.items() if share > 0]
    return items


def matching(items: list[Item], cond: Condition, score_margin: float = 0.0) -> list[Item]:
    """The items that meet ``cond`` (min_score lowered by ``score_margin``)."""
    min_score = cond.min_score - score_margin
    return [i for i in items
            if (cond.label is None or i.label == cond.label)
            and math.isfinite(i.score) and i.score >= min_score
            and (cond.min_area is None or (i.area is not None and i.area >= cond.min_area))
            and (cond.max_area is None or (i.area is not None and i.area <= cond.max_area))]


def frame_matches(items: list[Item], cond: Condition, score_margin: float = 0.0) -> tuple[bool, list[Item]]:
    hits = matching(items, cond, score_margin)
    ok = len(hits) >= cond.min_count and (cond.max_count is None or len(hits) <= cond.max_count)
    return ok, hits
