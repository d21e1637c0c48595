"""Mapping between model-input pixels and original-frame pixels (letterbox or stretch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Transform:
    """How a frame was fitted into the model input: ``input = frame * scale + pad``."""

    frame_w: int
    frame_h: int
    input_w: int
    input_h: int
    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0

    @classmethod
    def letterbox(cls, frame_w: int, frame_h: int, input_w: int, input_h: int) -> Transform:
        s = min(input_w / frame_w, input_h / frame_h)
        new_w, new_h = round(frame_w * s), round(frame_h * s)
        return cls(frame_w, frame_h, input_w, input_h, new_w / frame_w, new_h / frame_h,
                   (input_w - new_w) // 2, (input_h - new_h) // 2)

    @classmethod
    def stretch(cls, frame_w: int, frame_h: int, input_w: int, input_h: int) -> Transform:
        return cls(frame_w, frame_h, input_w, input_h, input_w / frame_w, input_h / frame_h)

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """``[N, 4]`` x1,y1,x2,y2 in model-input pixels -> original-frame pixels, clipped to the frame."""
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        b[:, [0, 2]] = (b[:, [0, 2]] - self.pad_x) / self.scale_x
        b[:, [1, 3]] = (b[:, [1, 3]] - self.pad_y) / self.scale_y
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, self.frame_w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, self.frame_h)
        return b

    def points_to_frame(self, pts: np.ndarray) -> np.ndarray:
        """``[..., 2]`` x,y in model-input pixels -> original-frame pixels."""
        p = np.asarray(pts, dtype=np.float32).copy()
        p[..., 0] = (p[..., 0] - self.pad_x) / self.scale_x
        p[..., 1] = (p[..., 1] - self.pad_y) / self.scale_y
        return p

    def crop_valid(self, arr: np.ndarray) -> np.ndarray:
        """Crop an ``[H_in, W_in, ...]`` model-input-sized map to the area that holds the frame."""
        x0, y0 = round(self.pad_x), round(self.pad_y)
        x1 = round(self.pad_x + self.frame_w * self.scale_x)
        y1 = round(self.pad_y + self.frame_h * self.scale_y)
        return arr[y0:y1, x0:x1]
