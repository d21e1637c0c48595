"""Deterministic per-class colours (BGR), shared by mask overlays and box annotation."""

from __future__ import annotations

import colorsys

import numpy as np

_GOLDEN = 0.618033988749895


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A BGR colour for a class id. Hues step by the golden ratio, so neighbouring ids look different."""
    r, g, b = colorsys.hsv_to_rgb((class_id * _GOLDEN) % 1.0, 0.85, 0.95)
    return round(b * 255), round(g * 255), round(r * 255)


def palette(num_classes: int) -> np.ndarray:
    """``[num_classes, 3]`` uint8 BGR colours; row k is ``class_colour(k)``."""
    return np.array([class_colour(k) for k in range(num_classes)], dtype=np.uint8).reshape(-1, 3)
