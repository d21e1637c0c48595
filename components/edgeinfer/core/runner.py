"""Loading what a config names: the model (verified, loaded, gated, tuned), the demo model and frames, the run
context. Used by the run session (core/session.py) and the benchmarks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .config import EdgeInferConfig, cache_dir
from .model import LoadedModel, load_model, resolve_package
from .sinks.base import RunContext
from .sources import ChainSource, Source, open_source
from .tuning import tune_threads

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def noop(_: str) -> None:
    pass


def demo_model_path(progress: Progress = noop) -> Path:
    from .demo import demo_packages

    return demo_packages(cache_dir(), progress)[0]


def demo_source(progress: Progress = noop) -> Source:
    from .demo import demo_frames

    folder, clip = demo_frames(cache_dir(), progress)
    return ChainSource([open_source(str(folder)), open_source(str(clip))])


def context_for(config: EdgeInferConfig, model: LoadedModel) -> RunContext:
    m = model.package.manifest
    return RunContext(device_id=config.device_id, model_name=m.name, model_version=m.version,
                      model_sha256=model.package.model_sha256, task=m.task, labels=m.labels,
                      backend=model.backend.info)


def load_configured(config: EdgeInferConfig, progress: Progress = noop) -> tuple[LoadedModel, dict[str, float]]:
    """The model ``config`` names (the demo model when none): sha256-verified, loaded, warmed up, threads tuned.

    Returns the model and how long resolving, loading and warming up took (ms)."""
    t0 = time.perf_counter()
    package = resolve_package(config.model.path or str(demo_model_path(progress)), config.model.task)
    t1 = time.perf_counter()
    model = load_model(package, config.backend, config.model.score_threshold, config.pipeline.max_batch)
    try:
        t2 = time.perf_counter()
        model.warmup(config.model.warmup_runs)
        model = tune_threads(model, config)
    except BaseException:
        model.close()
        raise
    t3 = time.perf_counter()
    return model, {"resolve": round((t1 - t0) * 1e3, 1), "load": round((t2 - t1) * 1e3, 1),
                   "warmup": round((t3 - t2) * 1e3, 1)}
