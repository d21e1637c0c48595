"""CPU thread tuning for the pipelined mode on small hosts.

On a 2-4 core device ONNX Runtime's intra-op threads take every core, so when preprocessing costs a
sizeable share of an inference the two stages keep knocking each other off the CPU: both slow down
and the pipeline falls short of its bound. Measured here (2 cores, BlazeFace full-range, preprocess
~1.2 ms vs inference ~3 ms): 2 threads 182 fps, 1 thread 262-305 fps; for the heavier layout model
(preprocess ~4 % of a 66 ms inference) 2 threads are twice as fast as 1. So with ``backend.threads``
unset we measure both at start and leave a core to the other stages only when they need it.

The choice is remembered in the state dir (``tuning.json``) for a day, keyed by the model's sha256, the
backend options and the cores: a device restarts often (deployments, crashes, reboots), and a restart then
opens the runtime once, with the threads measured before, instead of measuring again and opening it a second
time. After a day the next start measures again, so a choice measured under passing load does not stay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from .config import EdgeInferConfig
from .model import LoadedModel, load_model
from .modelpkg import ModelPackage

log = logging.getLogger(__name__)

#: preprocess/inference time ratio above which a core is left to the other stages
SHARE = 0.25
MAX_CORES = 4
TUNING_FILE = "tuning.json"
REMEMBER_S = 24 * 3600.0


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


def _tunes(cfg: EdgeInferConfig) -> bool:
    return cfg.backend.threads is None and cfg.pipeline.mode == "pipelined"


def _key(package: ModelPackage, cfg: EdgeInferConfig) -> str:
    what = [package.model_sha256, cfg.backend.model_dump(mode="json"), usable_cores()]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def _read(state_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((state_dir / TUNING_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _fresh(entry: object) -> bool:
    at = entry.get("at") if isinstance(entry, dict) else None
    return isinstance(at, (int, float)) and 0 <= time.time() - at < REMEMBER_S


def remembered_threads(package: ModelPackage, cfg: EdgeInferConfig, state_dir: Path) -> int | None:
    """The threads measured for this model, backend options and host at an earlier start: a count, 0 for the
    runtime's default, or None when nothing (valid) was remembered, or tuning does not apply."""
    if not _tunes(cfg):
        return None
    entry = _read(state_dir).get(_key(package, cfg))
    if not isinstance(entry, dict) or not _fresh(entry):
        return None
    value = entry.get("threads")
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < usable_cores() else None


def _remember(package: ModelPackage, cfg: EdgeInferConfig, state_dir: Path, threads: int | None) -> None:
    from .sinks.files import write_json_atomic

    try:
        entry = {"threads": threads or 0, "at": time.time()}
        kept = {k: v for k, v in _read(state_dir).items() if _fresh(v)}  # stale entries go (old models, old hosts)
        write_json_atomic(state_dir / TUNING_FILE, {**kept, _key(package, cfg): entry})
    except OSError as exc:  # the next start measures again
        log.debug("could not remember the thread choice in %s: %s", state_dir / TUNING_FILE, exc)


def remembered_options(package: ModelPackage, cfg: EdgeInferConfig, state_dir: Path) -> tuple[EdgeInferConfig, bool]:
    """``cfg`` with the threads remembered from an earlier start (and True), or as it is (and False): open the
    model with the returned config's backend options, and call ``tune_threads`` only when nothing was remembered."""
    threads = remembered_threads(package, cfg, state_dir)
    if threads is None:
        return cfg, False
    if threads:
        log.info("inference on %d thread(s), as measured at an earlier start on %d cores (set backend.threads to "
                 "override)", threads, usable_cores())
        cfg = cfg.model_copy(update={"backend": cfg.backend.model_copy(update={"threads": threads})})
    return cfg, True


def tune_threads(model: LoadedModel, cfg: EdgeInferConfig, frame_size: tuple[int, int] = (640, 480),
                 state_dir: Path | None = None) -> LoadedModel:
    """Return ``model``, or a reloaded copy with fewer intra-op threads when the stages would contend. With
    ``state_dir`` the choice is remembered there for the next start (``remembered_options``)."""
    b = cfg.backend
    if not _tunes(cfg) or model.backend.name != "onnxruntime" or model.backend.info.device != "cpu":
        return model
    frame = np.full((frame_size[1], frame_size[0], 3), 114, dtype=np.uint8)
    tensor, _ = model.preprocessor(frame)
    batch = tensor[None]
    pre_ms = _median_ms(lambda: model.preprocessor(frame))
    infer_ms = _median_ms(lambda: model.infer(batch))
    threads = recommended_threads(pre_ms, infer_ms, usable_cores())
    if state_dir is not None:
        _remember(model.package, cfg, state_dir, threads)
    if threads is None:
        return model
    tuned = load_model(model.package, b.model_copy(update={"threads": threads}), cfg.model.score_threshold,
                       cfg.pipeline.max_batch, model.keys)
    tuned.warmup(1)
    model.close()
    log.info("inference on %d thread(s): preprocessing takes %.1f ms per %.1f ms inference on %d cores "
             "(set backend.threads to override)", threads, pre_ms, infer_ms, usable_cores())
    return tuned
