"""Draw results on a frame: boxes with label and score, top classes, segmentation overlay."""

from __future__ import annotations

import cv2
import numpy as np

from .tasks.palette import class_colour as colour
from .types import FrameResult


def _label(img: np.ndarray, text: str, x: int, y: int, col: tuple[int, int, int], scale: float) -> None:
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    y = max(y, th + base + 2)
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 4, y), col, -1)
    cv2.putText(img, text, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def annotate(result: FrameResult, image: np.ndarray | None = None) -> np.ndarray:
    """A copy of the frame with the result drawn on it."""
    src = image if image is not None else result.image
    if src is None:
        raise ValueError("annotate needs the frame image")
    img = src.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, round(min(w, h) / 300))
    seg = result.output.segmentation
    if seg is not None:
        from .tasks.segmentation import overlay

        if result.roi is not None:  # the mask covers the stream's region of interest
            x, y, rw, rh = result.roi
            img[y:y + rh, x:x + rw] = overlay(img[y:y + rh, x:x + rw], seg.mask)
        else:
            img = overlay(img, seg.mask)
        lines = [f"{k} {v:.1%}" for k, v in sorted(seg.areas.items(), key=lambda kv: -kv[1]) if v > 0][:5]
        for i, text in enumerate(lines):
            _label(img, text, 4, int((i + 1) * 28 * scale / 0.5), (60, 60, 60), scale)
    if result.roi is not None:
        x, y, rw, rh = result.roi
        cv2.rectangle(img, (x, y), (x + rw - 1, y + rh - 1), (200, 200, 200), thick, cv2.LINE_AA)
    for d in result.output.detections:
        col = colour(d.class_id)
        x1, y1, x2, y2 = (round(v) for v in d.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), col, thick, cv2.LINE_AA)
        for kx, ky in d.keypoints or ():
            cv2.circle(img, (int(kx), int(ky)), thick + 1, col, -1, cv2.LINE_AA)
        _label(img, f"{d.label} {d.score:.2f}", x1, y1, col, scale)
    for i, c in enumerate(result.output.classes[:5]):
        _label(img, f"{c.label} {c.score:.2f}", 4, int((i + 1) * 28 * scale / 0.5), colour(c.class_id), scale)
    return img
