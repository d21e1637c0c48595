"""Synthetic FrameResults and run contexts: what the pipeline would hand the telemetry sink."""

from __future__ import annotations

from edgeinfer.core.backends.base import BackendInfo
from edgeinfer.core.sinks.base import RunContext
from edgeinfer.core.types import Classification, Detection, FrameResult, TaskOutput


def run_context(device: str = "dev-1", version: str = "1.2.0", degraded: bool = False) -> RunContext:
    info = BackendInfo(backend="onnxruntime", device="cpu", precision="fp32",
                       requested=["cuda", "cpu"], active=["CPUExecutionProvider"], degraded=degraded,
                       reason="CUDA EP not available: running on CPU" if degraded else None)
    return RunContext(device_id=device, model_name="blazeface", model_version=version, model_sha256="ab" * 32,
                      task="detection", labels=["face", "person"], backend=info)


def detection(label: str = "person", score: float = 0.8, box: tuple[float, float, float, float] = (100, 80, 220, 300),
              ) -> Detection:
    return Detection(label=label, class_id=0, score=score, box=box)


def frame(index: int, ts: float, detections: list[Detection] | None = None, source: str = "cam0",
          width: int = 640, height: int = 480) -> FrameResult:
    return FrameResult(source=source, index=index, ts=ts, width=width, height=height, task="detection",
                       output=TaskOutput(detections=list(detections or [])),
                       timings_ms={"preprocess": 1.2 + index % 3 * 0.1, "infer": 8.0 + index % 7, "decode": 0.4})


def classified(index: int, ts: float, label: str, score: float) -> FrameResult:
    return FrameResult(source="cam0", index=index, ts=ts, width=224, height=224, task="classification",
                       output=TaskOutput(classes=[Classification(label=label, class_id=0, score=score)]),
                       timings_ms={"infer": 3.0})


def clip(seconds: float, fps: float, t0: float = 1_700_000_000.0, people: int = 2) -> list[FrameResult]:
    """A scene with ``people`` detections per frame, boxes drifting a little."""
    n = round(seconds * fps)
    return [frame(i, t0 + i / fps, [detection("person", 0.6 + 0.3 * ((i + k) % 10) / 10,
                                              (50 + k * 200 + i % 20, 60, 180 + k * 200 + i % 20, 400))
                                    for k in range(people)]) for i in range(n)]
