"""Frame -> model input tensor, as the manifest's input spec says (resize policy, colour, scaling, layout)."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import FrameError
from .geometry import Transform
from .modelpkg.manifest import InputSpec

MIN_SIDE, MAX_SIDE = 8, 16384


def check_frame(image: object) -> np.ndarray:
    """Accept HxW (gray), HxWx1, HxWx3 or HxWx4 uint8 arrays; raise FrameError otherwise."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise FrameError("empty or unreadable frame")
    if image.dtype != np.uint8:
        raise FrameError(f"frame dtype {image.dtype} is not uint8")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4):
        if image.shape[2] == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    else:
        raise FrameError(f"frame shape {image.shape} is not an image")
    h, w = image.shape[:2]
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise FrameError(f"frame size {w}x{h} is outside {MIN_SIDE}..{MAX_SIDE} pixels")
    return image


class Preprocessor:
    """Stateless apart from precomputed constants; safe to call from several threads."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        c = spec.channels
        mean = np.asarray(spec.mean * (c if len(spec.mean) == 1 else 1), dtype=np.float32)
        std = np.asarray(spec.std * (c if len(spec.std) == 1 else 1), dtype=np.float32)
        self._scale = (1.0 / std).astype(np.float32)
        self._shift = (-mean / std).astype(np.float32)
        self._raw = spec.dtype == "uint8"  # uint8 models take pixels as they are
        self._out_dtype = np.float16 if spec.dtype == "float16" else np.float32

    def transform_for(self, width: int, height: int) -> Transform:
        s = self.spec
        if s.resize == "letterbox":
            return Transform.letterbox(width, height, s.width, s.height)
        return Transform.stretch(width, height, s.width, s.height)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, Transform]:
        """``image`` BGR uint8 HxWx3 -> (tensor WITHOUT batch dim, transform back to frame pixels)."""
        s = self.spec
        h, w = image.shape[:2]
        t = self.transform_for(w, h)
        new_w, new_h = round(w * t.scale_x), round(h * t.scale_y)
        interp = cv2.INTER_AREA if new_w < w else cv2.INTER_LINEAR
        resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
        if s.resize == "letterbox" and (new_w, new_h) != (s.width, s.height):
            px, py = int(t.pad_x), int(t.pad_y)
            resized = cv2.copyMakeBorder(resized, py, s.height - new_h - py, px, s.width - new_w - px,
                                         cv2.BORDER_CONSTANT, value=(s.pad_value,) * 3)
        if s.color == "RGB":
            resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        elif s.color == "GRAY":
            resized = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)[:, :, None]
        arr: np.ndarray
        if self._raw:
            arr = resized
        else:
            arr = resized.astype(np.float32)
            arr *= self._scale
            arr += self._shift
            if self._out_dtype is not np.float32:
                arr = arr.astype(self._out_dtype)
        if s.layout == "NCHW":
            arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
        return arr, t
