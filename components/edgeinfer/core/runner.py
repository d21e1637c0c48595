"""Loading what a config names: the model (verified, loaded, gated, tuned), the demo model and frames, the run
context. Used by the run session (core/session.py) and the benchmarks."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .config import EdgeInferConfig, cache_dir
from .model import LoadedModel, load_model, resolve_package
from .modelpkg.keys import KeySource, key_provider
from .modelpkg.manifest import Manifest
from .modelpkg.trust import check_package, refuse_bare
from .progress import Progress, no_progress
from .sinks.base import RunContext
from .sources import ChainSource, Source, open_source
from .tuning import remembered_options, tune_threads

log = logging.getLogger(__name__)



def demo_model_path(progress: Progress = no_progress) -> Path:
    from .demo import demo_packages

    return demo_packages(cache_dir(), progress)[0]


def demo_source(progress: Progress = no_progress) -> Source:
    from .demo import demo_frames

    folder, clip = demo_frames(cache_dir(), progress)
    return ChainSource([open_source(str(folder)), open_source(str(clip))])


def context_for(config: EdgeInferConfig, model: LoadedModel) -> RunContext:
    m = model.package.manifest
    return RunContext(device_id=config.device_id, model_name=m.name, model_version=m.version,
                      model_sha256=model.package.model_sha256, task=m.task, labels=m.labels,
                      backend=model.backend.info, component=config.component)


def load_configured(config: EdgeInferConfig, progress: Progress = no_progress, running: Manifest | None = None,
                    key_source: KeySource | None = None) -> tuple[LoadedModel, dict[str, float]]:
    """The model ``config`` names (the demo model when none): sha256-verified, trusted (``trust.keys``: signed,
    not older than ``running`` or the newest activated), loaded, warmed up, threads tuned. Nothing is loaded
    into a backend before it is trusted. An encrypted package is decrypted in memory with the key
    ``trust.decryption`` names (``key_source``: the adapter's secret store, for the sources only it can reach).

    Returns the model and how long resolving, loading and warming up took (ms)."""
    t0 = time.perf_counter()
    path = config.model.path
    if path:
        refuse_bare(path, config.trust)
        package = resolve_package(path, config.model.task)
        check_package(package, config.trust, running, config.resolved_state_dir())
    else:  # the embedded demo model is code: trusted as the code is
        package = resolve_package(str(demo_model_path(progress)))
    t1 = time.perf_counter()
    keys = key_provider(config.trust.decryption, key_source)  # asked for only when the package is encrypted
    state = config.resolved_state_dir()
    opened, tuned = remembered_options(package, config, state)  # threads measured at an earlier start, if any
    model = load_model(package, opened.backend, config.model.score_threshold, config.pipeline.max_batch, keys)
    try:
        t2 = time.perf_counter()
        model.warmup(config.model.warmup_runs)
        if not tuned:
            model = tune_threads(model, config, state_dir=state)
    except BaseException:
        model.close()
        raise
    t3 = time.perf_counter()
    return model, {"resolve": round((t1 - t0) * 1e3, 1), "load": round((t2 - t1) * 1e3, 1),
                   "warmup": round((t3 - t2) * 1e3, 1)}
