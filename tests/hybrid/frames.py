"""Hand-made frames and results for the fallback and capture tests."""

from __future__ import annotations

import numpy as np

from edgeinfer.core.backends.base import BackendInfo
from edgeinfer.core.sinks.base import RunContext
from edgeinfer.core.types import Detection, FrameResult, TaskOutput


def result(index: int, *scores: float, label: str = "face", source: str = "cam0") -> FrameResult:
    image = np.full((120, 160, 3), index % 255, dtype=np.uint8)  # a different JPEG per frame
    dets = [Detection(label, 0, s, (10.0 + 30 * i, 10.0, 40.0 + 30 * i, 50.0)) for i, s in enumerate(scores)]
    return FrameResult(source, index, 1_700_000_000.0 + index, 160, 120, "detection", TaskOutput(detections=dets),
                       {"infer": 1.0}, image)


def context(degraded: bool = False) -> RunContext:
    info = BackendInfo(backend="onnxruntime", device="cpu", precision="fp32", requested=["cpu"], active=["cpu"],
                       degraded=degraded, reason="CUDA missing: running on CPU" if degraded else None)
    return RunContext("dev-1", "faces", "1.0.0", "0" * 64, "detection", ["face"], info)


def answer(*boxes: tuple[float, float, float, float], score: float = 0.95, label: str = "face") -> dict:
    return {"detections": [{"label": label, "score": score, "box": list(b)} for b in boxes]}
