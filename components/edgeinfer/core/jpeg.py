"""Fit an annotated JPEG into a transport's message limit (IoT Core 128 KB, a direct method's payload)."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import EdgeInferError

_QUALITIES = (80, 65, 50)
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)


def fit_jpeg(jpeg: bytes, max_bytes: int) -> tuple[bytes, int, int]:
    """``(jpeg, width, height)`` with ``len(jpeg) <= max_bytes``: the image as it is when it fits, else
    re-encoded at a lower quality, then smaller. EdgeInferError when even a quarter size does not fit."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise EdgeInferError("the snapshot is not a JPEG OpenCV can decode", "check OpenCV's JPEG support")
    height, width = image.shape[:2]
    if len(jpeg) <= max_bytes:
        return jpeg, width, height
    for scale in _SCALES:
        frame = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for quality in _QUALITIES:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes(), frame.shape[1], frame.shape[0]
    raise EdgeInferError(f"the snapshot does not fit {max_bytes} bytes even at a quarter size",
                         "ask for a larger max_bytes, or lower the source's resolution")
