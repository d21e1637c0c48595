"""`edgeinfer bench`: the bare runtime loop vs edgeinfer on the same model and frames, in one process.

* bare: the runtime's own call (``InferenceSession.run`` / LiteRT ``invoke``) on pre-made input tensors,
  one frame at a time, on the very session edgeinfer uses.
* edgeinfer sequential: the same frames through the pipeline in sequential mode; its infer-stage p50
  against the bare p50 is the overhead ratio (target <= 1.03).
* edgeinfer pipelined: stages overlapped; throughput against the bound set by the slowest stage
  (1 / its p50) is the efficiency (target >= 0.9).
Bare and sequential runs alternate in blocks so drift (thermal, other load) hits both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import EdgeInferConfig, PipelineConfig
from .model import load_model, resolve_package
from .pipeline import Pipeline
from .progress import Progress, no_progress
from .sources import MemorySource
from .tuning import tune_threads


@dataclass
class BenchResult:
    model: str
    backend: str
    frames: int
    bare_ms: list[float] = field(default_factory=list)
    edgeinfer_ms: list[float] = field(default_factory=list)
    sequential: dict[str, Any] = field(default_factory=dict)
    pipelined: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # intra-op threads set explicitly (None = the runtime's default)

    def report(self) -> dict[str, Any]:
        bare = float(np.median(self.bare_ms))
        ei = float(np.median(self.edgeinfer_ms))
        p = self.pipelined
        return {
            "model": self.model, "backend": self.backend, "frames": self.frames, "threads": self.threads,
            "bare_p50_ms": round(bare, 3), "bare_p99_ms": round(float(np.percentile(self.bare_ms, 99)), 3),
            "edgeinfer_p50_ms": round(ei, 3), "pipeline_p50_ms": round(ei, 3),
            "overhead_ratio": round(ei / bare, 4),
            "frame_p50_ms": self.sequential["stages_ms"]["total"]["p50"],
            "throughput_fps": p["fps"], "bound_fps": p["bound_fps"], "bottleneck": p["bottleneck"],
            "efficiency": p["efficiency"], "bottleneck_busy": _busy(p),
            "pipelined_stages_ms": {k: v["p50"] for k, v in p["stages_ms"].items()},
        }


def _busy(pipelined: dict[str, Any]) -> float | None:
    """Share of the pipelined wall time the bottleneck stage was working (fps x its MEAN time).

    Efficiency charges the bottleneck's p50; this charges its mean. Busy near 1 with low efficiency means
    the pipeline kept the stage fed and the stage itself had slow outliers (CPU contention), not gaps.
    """
    stage = pipelined["stages_ms"].get(pipelined["bottleneck"] or "")
    return round(pipelined["fps"] * stage["mean"] / 1e3, 3) if stage else None


def _images(n_distinct: int = 5) -> list[np.ndarray]:
    from .demo import SAMPLE_IMAGES, sample_image

    return [sample_image(name) for name in SAMPLE_IMAGES[:n_distinct]]


def run_benchmark(cfg: EdgeInferConfig, frames: int = 200, rounds: int = 5, progress: Progress = no_progress,
                  images: list[np.ndarray] | None = None) -> BenchResult:
    from .runner import demo_model_path

    path = cfg.model.path or str(demo_model_path(progress))
    package = resolve_package(path, cfg.model.task)
    model = load_model(package, cfg.backend, cfg.model.score_threshold, max_batch=1)
    try:
        model.warmup(max(5, cfg.model.warmup_runs))
        model = tune_threads(model, cfg)  # what `edgeinfer run` would run with
        imgs = images or _images()
        tensors = [model.preprocessor(img)[0][None] for img in imgs]
        call = model.backend.bare_call(model.input_name)  # the runtime's own call, on edgeinfer's session
        result = BenchResult(package.manifest.name, model.backend.info.summary(), frames)
        result.threads = model.backend.threads()
        per_round = max(1, frames // rounds)
        seq_cfg = PipelineConfig(mode="sequential")
        seq: Pipeline | None = None
        for r in range(rounds):
            progress(f"round {r + 1}/{rounds}: bare runtime loop")
            for i in range(per_round):
                t = tensors[i % len(tensors)]
                t0 = time.perf_counter()
                call(t)
                result.bare_ms.append((time.perf_counter() - t0) * 1e3)
            progress(f"round {r + 1}/{rounds}: edgeinfer sequential")
            src = MemorySource([imgs[i % len(imgs)] for i in range(per_round)], "bench")
            seq = Pipeline(model, src, [], seq_cfg, keep_images=False)
            seq.run()
            result.edgeinfer_ms.extend(seq.stats._samples["infer"])
        assert seq is not None
        result.sequential = seq.summary()
        progress("edgeinfer pipelined")
        src = MemorySource([imgs[i % len(imgs)] for i in range(frames)], "bench")
        pipe = Pipeline(model, src, [], cfg.pipeline.model_copy(update={"mode": "pipelined"}), keep_images=False)
        result.pipelined = pipe.run()
        return result
    finally:
        model.close()
