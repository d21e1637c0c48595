"""`edgeinfer bench`: the loops a user compares edgeinfer with, on the same model, frames and threads, in one process.

* hand-written: the whole frame as a user writes it (``core/handwritten.py``): resize/normalise with
  OpenCV/numpy, the runtime's own call, decode with numpy; on the very session edgeinfer uses.
* bare: the runtime's own call (``InferenceSession.run`` / LiteRT ``invoke``) on pre-made input tensors,
  one frame at a time: the infer stage's yardstick.
* edgeinfer sequential: the same frames through the pipeline in sequential mode. Its whole-frame p50
  against the hand-written loop's is the frame ratio (target <= 1.02); its infer-stage p50 against the
  bare p50 is the overhead ratio (target <= 1.03).
* edgeinfer pipelined: stages overlapped; throughput against the bound set by the slowest stage
  (1 / its p50) is the efficiency (target >= 0.95: pipelined / hand-written fps >= 0.95 x bound /
  hand-written fps).
Whole-frame latency is from taking the frame to its decoded result; jitter is its p99 / p50.
Hand-written, bare and sequential runs alternate in blocks (the order flips each round) so drift
(thermal, other load) hits them alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import EdgeInferConfig, PipelineConfig
from .handwritten import hand_written_step
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
    hand_ms: list[float] = field(default_factory=list)  # whole frame, hand-written loop
    hand_s: float = 0.0  # wall time of the hand-written rounds
    hand_missing: str | None = None  # why there is no hand-written loop for this model
    frame_ms: list[float] = field(default_factory=list)  # whole frame, edgeinfer sequential (read + the rest)
    sequential_s: float = 0.0  # wall time of the sequential rounds

    def whole_frame(self) -> dict[str, Any]:
        """Whole-frame latency p50/p99, jitter (p99/p50) and throughput of each loop, and the ratios with targets."""
        p = self.pipelined
        total = p["stages_ms"]["total"]
        loops: dict[str, Any] = {
            "hand_written": _loop(self.hand_ms, self.hand_s) if self.hand_ms else None,
            "sequential": _loop(self.frame_ms, self.sequential_s),
            "pipelined": {"p50_ms": total["p50"], "p99_ms": total["p99"],
                          "jitter": round(total["p99"] / total["p50"], 3), "fps": p["fps"]},
        }
        out: dict[str, Any] = {"whole_frame": loops, "hand_written_missing": self.hand_missing}
        hand = loops["hand_written"]
        if hand is not None and p["bound_fps"]:
            seq_ratio = round(loops["sequential"]["p50_ms"] / hand["p50_ms"], 4)
            pipe_ratio = round(p["fps"] / hand["fps"], 4)
            bound_ratio = round(p["bound_fps"] / hand["fps"], 4)
            out.update(sequential_vs_hand=seq_ratio, pipelined_vs_hand=pipe_ratio, bound_vs_hand=bound_ratio)
            out["targets"] = {
                "sequential_vs_hand <= 1.02": seq_ratio <= 1.02,
                "pipelined_vs_hand >= 0.95 x bound_vs_hand": pipe_ratio >= 0.95 * bound_ratio,
            }
        return out

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
            **self.whole_frame(),
        }


def _loop(ms: list[float], wall_s: float) -> dict[str, float]:
    p50, p99 = (float(v) for v in np.percentile(ms, (50, 99)))
    return {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "jitter": round(p99 / p50, 3),
            "fps": round(len(ms) / wall_s, 2)}


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
        hand = hand_written_step(model)
        result = BenchResult(package.manifest.name, model.backend.info.summary(), frames)
        result.threads = model.backend.threads()
        if hand is None:
            result.hand_missing = f"no hand-written decoder for {getattr(model.decoder, 'type', '?')} models"
        per_round = max(1, frames // rounds)
        seq_cfg = PipelineConfig(mode="sequential")
        seq: Pipeline | None = None

        def bare() -> None:
            progress(f"round {r + 1}/{rounds}: bare runtime loop")
            for i in range(per_round):
                t = tensors[i % len(tensors)]
                t0 = time.perf_counter()
                call(t)
                result.bare_ms.append((time.perf_counter() - t0) * 1e3)

        def hand_written() -> None:
            if hand is None:
                return
            progress(f"round {r + 1}/{rounds}: hand-written loop")
            start = time.perf_counter()
            for i in range(per_round):
                t0 = time.perf_counter()
                hand(imgs[i % len(imgs)])
                result.hand_ms.append((time.perf_counter() - t0) * 1e3)
            result.hand_s += time.perf_counter() - start

        def sequential() -> None:
            nonlocal seq
            progress(f"round {r + 1}/{rounds}: edgeinfer sequential")
            src = MemorySource([imgs[i % len(imgs)] for i in range(per_round)], "bench")
            seq = Pipeline(model, src, [], seq_cfg, keep_images=False)
            seq.run()
            result.sequential_s += seq.ended_at - seq.started_at
            result.edgeinfer_ms.extend(seq.stats.samples("infer"))
            # in sequential mode a frame's read and the rest (preprocess .. result: 'total') follow each other
            read, rest = seq.stats.samples("read"), seq.stats.samples("total")
            result.frame_ms.extend(a + b for a, b in zip(read, rest, strict=True))

        for r in range(rounds):
            for part in (hand_written, bare, sequential) if r % 2 == 0 else (sequential, bare, hand_written):
                part()
        assert seq is not None
        result.sequential = seq.summary()
        progress("edgeinfer pipelined")
        src = MemorySource([imgs[i % len(imgs)] for i in range(frames)], "bench")
        pipe = Pipeline(model, src, [], cfg.pipeline.model_copy(update={"mode": "pipelined"}), keep_images=False)
        result.pipelined = pipe.run()
        return result
    finally:
        model.close()
