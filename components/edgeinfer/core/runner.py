"""Config -> model + source + sinks -> pipeline run. Shared by the CLI, Greengrass and IoT Edge entry points."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import EdgeInferConfig, cache_dir
from .model import LoadedModel, load_model, resolve_package
from .pipeline import Pipeline
from .sinks.base import RunContext, Sink
from .sinks.files import AnnotatedFramesSink, file_sinks, write_json_atomic
from .sources import ChainSource, Source, open_source
from .tuning import tune_threads

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def demo_model_path(progress: Progress = _noop) -> Path:
    from .demo import demo_packages

    return demo_packages(cache_dir(), progress)[0]


def demo_source(progress: Progress = _noop) -> Source:
    from .demo import demo_frames

    folder, clip = demo_frames(cache_dir(), progress)
    return ChainSource([open_source(str(folder)), open_source(str(clip))])


@dataclass
class Run:
    """One prepared run. ``execute()`` blocks until the source ends or ``stop()`` is called."""

    config: EdgeInferConfig
    model: LoadedModel
    source: Source
    sinks: list[Sink]
    context: RunContext
    timings: dict[str, float] = field(default_factory=dict)
    pipeline: Pipeline | None = None
    telemetry: Any | None = None  # TelemetryService when a transport or rules are configured

    def execute(self) -> dict[str, Any]:
        if self.telemetry is not None:
            self.telemetry.start()
        for s in self.sinks:
            s.start(self.context)
        self.pipeline = Pipeline(self.model, self.source, self.sinks, self.config.pipeline, self.config.max_frames,
                                 keep_images=any(isinstance(s, AnnotatedFramesSink) for s in self.sinks)
                                 or bool(self.context.extra.get("keep_images")))
        if self.telemetry is not None:
            self.telemetry.set_queue_depths_provider(self.pipeline.queue_depths)
        summary: dict[str, Any] = {}
        try:
            summary = self.pipeline.run()
            summary["load_ms"] = self.timings
        finally:
            if not summary and self.pipeline is not None:
                summary = self.pipeline.summary()
            for s in self.sinks:
                try:
                    s.close(summary)
                except Exception:  # one sink's failure must not lose the others' output
                    log.exception("sink %s failed to close", type(s).__name__)
            if self.telemetry is not None:
                summary["telemetry"] = self._finish_telemetry()
            if self.config.output.dir:
                write_json_atomic(Path(self.config.output.dir) / "summary.json", summary)
            self.model.close()
        return summary

    def _finish_telemetry(self) -> dict[str, Any]:
        """Drain the outbox for up to ``telemetry.drain_timeout_s``; what is left waits for the next start."""
        t = self.telemetry
        assert t is not None
        left = t.drain(self.config.telemetry.drain_timeout_s)
        snap = t.snapshot()
        t.close()
        return {"transport": self.config.telemetry.transport, "mode": self.config.telemetry.mode,
                "left_in_outbox": left, **snap.to_dict()}

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
        self.source.close()


def context_for(config: EdgeInferConfig, model: LoadedModel) -> RunContext:
    m = model.package.manifest
    return RunContext(device_id=config.device_id, model_name=m.name, model_version=m.version,
                      model_sha256=model.package.model_sha256, task=m.task, labels=m.labels,
                      backend=model.backend.info)


def load_configured(config: EdgeInferConfig, progress: Progress = _noop) -> tuple[LoadedModel, dict[str, float]]:
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


def prepare(config: EdgeInferConfig, extra_sinks: list[Sink] | None = None, progress: Progress = _noop) -> Run:
    """Resolve the model (demo when none), load and warm it, open the source (demo frames when none)."""
    model, timings = load_configured(config, progress)
    try:
        s = config.source
        source = open_source(s.uri, s.live, s.loop, s.fps) if s.uri else demo_source(progress)
    except BaseException:
        model.close()
        raise
    o = config.output
    sinks: list[Sink] = [*file_sinks(o), *(extra_sinks or [])]
    ctx = context_for(config, model)
    telemetry = None
    if config.telemetry.transport != "none" or config.rules:
        from .telemetry.service import TelemetryService

        try:
            telemetry = TelemetryService.from_config(config, ctx)
        except BaseException:
            model.close()
            source.close()
            raise
        sinks.append(telemetry.sink)
    return Run(config, model, source, sinks, ctx, timings, telemetry=telemetry)
