"""CPU thread tuning for the pipelined mode on small hosts.

On a 2-4 core device ONNX Runtime's intra-op threads take every core, so when preprocessing costs a
sizeable share of an inference the two stages keep knocking each other off the CPU: both slow down
and the pipeline falls short of its bound. Measured here (2 cores, BlazeFace full-range, preprocess
~1.2 ms vs inference ~3 ms): 2 threads 182 fps, 1 thread 262-305 fps; for the heavier layout model
(preprocess ~4 % of a 66 ms inference) 2 threads are twice as fast as 1. So with ``backend.threads``
unset we measure both at start and leave a core to the other stages only when they need it.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from .config import EdgeInferConfig
from .model import LoadedModel, load_model

log = logging.getLogger(__name__)

#: preprocess/inference time ratio above which a core is left to the other stages
SHARE = 0.25
MAX_CORES = 4


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def recommended_threads(pre_ms: float, infer_ms: float, cores: int) -> int | None:
    """Threads for inference, or None to keep the runtime's default."""
    if cores < 2 or cores > MAX_CORES or infer_ms <= 0:
        return None
    return cores - 1 if pre_ms / infer_ms >= SHARE else None


def _median_ms(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def tune_threads(model: LoadedModel, cfg: EdgeInferConfig, frame_size: tuple[int, int] = (640, 480)) -> LoadedModel:
    """Return ``model``, or a reloaded copy with fewer intra-op threads when the stages would contend."""
    b = cfg.backend
    if b.threads is not None or cfg.pipeline.mode != "pipelined" or model.backend.name != "onnxruntime" \
            or model.backend.info.device != "cpu":
        return model
    frame = np.full((frame_size[1], frame_size[0], 3), 114, dtype=np.uint8)
    tensor, _ = model.preprocessor(frame)
    batch = tensor[None]
    pre_ms = _median_ms(lambda: model.preprocessor(frame))
    infer_ms = _median_ms(lambda: model.infer(batch))
    threads = recommended_threads(pre_ms, infer_ms, usable_cores())
    if threads is None:
        return model
    tuned = load_model(model.package, b.model_copy(update={"threads": threads}), cfg.model.score_threshold,
                       cfg.pipeline.max_batch, model.keys)
    tuned.warmup(1)
    model.close()
    log.info("inference on %d thread(s): preprocessing takes %.1f ms per %.1f ms inference on %d cores "
             "(set backend.threads to override)", threads, pre_ms, infer_ms, usable_cores())
    return tuned
