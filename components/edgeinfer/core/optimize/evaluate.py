"""Run the original and the optimised model on the same held-out frames: outputs to compare, latencies to rank.

Both models see each frame in turn (original, optimised; the order alternates frame by frame), so a busy
host slows both alike. A latency is one ``infer`` call on a preprocessed frame: the part an optimisation
changes, not the decoding or the frame reading around it. The first pass decodes and keeps the outputs;
``repeats`` more passes only time. One warm-up inference each comes first (lazy allocations, thread pools).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..model import LoadedModel
from ..progress import Progress, no_progress
from ..types import TaskOutput
from .frames import FrameSet


@dataclass
class ModelRun:
    outputs: list[TaskOutput] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float | None:
        ms = sorted(self.latency_ms)
        return ms[len(ms) // 2] if ms else None


def evaluate_pair(original: LoadedModel, optimized: LoadedModel, frames: FrameSet, repeats: int = 3,
                  progress: Progress = no_progress) -> tuple[ModelRun, ModelRun]:
    runs = (ModelRun(), ModelRun())
    models = (original, optimized)
    for model in models:
        model.warmup(1)
    total = len(frames) * (1 + repeats)
    step = 0
    for rep in range(1 + repeats):
        for i, image in enumerate(frames.images):
            order = (0, 1) if (i + rep) % 2 == 0 else (1, 0)
            for k in order:
                model, run = models[k], runs[k]
                tensor, transform = model.preprocessor(image)
                started = time.perf_counter()
                out = model.infer(tensor[None])[0]
                run.latency_ms.append((time.perf_counter() - started) * 1000.0)
                if rep == 0:
                    run.outputs.append(model.decoder.decode(out, transform, model.labels))
            step += 1
            progress("comparing on held-out frames", step, total)
    return runs
