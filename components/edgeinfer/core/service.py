"""A long-running inference service for a device. The Greengrass component and the IoT Edge module are
thin layers over it: they feed it configuration (component configuration / twin desired properties),
commands (reload, snapshot, threshold) and a telemetry transport (PublishToIoTCore / module outputs).

Guarantees:
* a config update is validated whole before anything changes; an invalid one raises ConfigError with a
  one-line reason and the running config stays;
* a new model is verified (sha256), loaded and warmed up while the old one keeps serving, then swapped
  between frames; on any failure the old model stays and ModelError is raised;
* ``busy`` is True while a warm-up/swap or an inference batch is in flight (component updates defer on it).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2

from . import config as cfgmod
from . import heap
from .annotate import annotate
from .config import EdgeInferConfig
from .errors import EdgeInferError, ModelError, SourceError
from .model import LoadedModel
from .pipeline import Pipeline
from .runner import context_for, demo_source, load_configured
from .sinks.base import RunContext, Sink
from .sinks.files import AnnotatedFramesSink, file_sinks
from .sources import Source, open_source

log = logging.getLogger(__name__)

_RESTART_SECTIONS = ("source", "pipeline", "output", "max_frames", "telemetry", "rules", "device_id", "state_dir")
_TELEMETRY_SECTIONS = ("telemetry", "rules", "device_id", "state_dir")
_MODEL_KEYS = ("path", "task", "warmup_runs")


class InferenceService:
    def __init__(self, config: EdgeInferConfig, transport: Any | None = None,
                 extra_sinks: list[Sink] | None = None) -> None:
        self.config = config
        self._transport = transport
        self._extra_sinks = list(extra_sinks or [])
        self._lock = threading.RLock()  # serialises control operations (patches, reloads, start/stop)
        self._model: LoadedModel | None = None
        self._pipeline: Pipeline | None = None
        self._thread: threading.Thread | None = None
        self._telemetry: Any | None = None
        self._swapping = threading.Event()
        self._idle = threading.Condition()
        self.last_error: str | None = None
        self.last_summary: dict[str, Any] | None = None
        self.config_version = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._model = self._load(self.config)
            try:
                self._start_pipeline(self.config, self._open_source(self.config))
            except BaseException:
                self._model.close()
                self._model = None
                raise

    def stop(self, drain_timeout_s: float | None = None) -> int:
        """Stop the pipeline and telemetry; returns the events left in the outbox for the next start."""
        with self._lock:
            self._stop_pipeline()
            left = self._stop_telemetry(drain_timeout_s)
            if self._model is not None:
                self._model.close()
                self._model = None
            return left

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the current pipeline to end (a finite source). True when it ended."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout_s)
        return not t.is_alive()

    # -- configuration -----------------------------------------------------------------------------
    def apply_patch(self, patch: dict[str, Any]) -> EdgeInferConfig:
        with self._lock:
            return self._apply(cfgmod.apply_patch(self.config, patch))

    def replace_config(self, full: dict[str, Any]) -> EdgeInferConfig:
        with self._lock:
            merged = cfgmod.deep_merge({"device_id": self.config.device_id}, full)
            return self._apply(cfgmod.validate(merged, "configuration"))

    def _apply(self, new: EdgeInferConfig) -> EdgeInferConfig:
        old = self.config
        model_changed = any(getattr(new.model, k) != getattr(old.model, k) for k in _MODEL_KEYS) or (
            new.backend != old.backend)
        restart = any(getattr(new, k) != getattr(old, k) for k in _RESTART_SECTIONS)
        if model_changed:
            self._reload(new)  # raises and leaves everything as it was when the model is bad
        elif new.model.score_threshold != old.model.score_threshold and self._model is not None:
            self._set_threshold(new.model.score_threshold)
        if new.log_level != old.log_level:
            logging.getLogger("edgeinfer").setLevel(new.log_level)
        if restart and self._model is not None:
            # A new source is opened before the old one stops, so a bad one leaves the run as it was.
            # The same source (e.g. a camera that opens once) is reopened after the old pipeline stops.
            source = self._open_source(new) if new.source != old.source else None
            self._restart_pipeline(new, source)
        self.config = new
        self.config_version += 1
        log.info("configuration applied (version %d)", self.config_version)
        return new

    # -- model -------------------------------------------------------------------------------------
    def reload_model(self, path: str | None = None) -> dict[str, Any]:
        with self._lock:
            new_cfg = self.config
            if path is not None:
                new_cfg = cfgmod.apply_patch(self.config, {"model": {"path": path}}, "model reload")
            self._reload(new_cfg)
            self.config = new_cfg
            return self.status()["model"]

    def _reload(self, cfg: EdgeInferConfig) -> None:
        self._swapping.set()
        try:
            new = self._load(cfg)
        except EdgeInferError as exc:
            self.last_error = str(exc)
            raise ModelError(f"model not changed: {exc.problem}", exc.fix) from exc
        finally:
            self._swapping.clear()
        old = self._model
        self._model = new
        if self._pipeline is not None and self.running:
            self._pipeline.swap_model(new)  # the pipeline closes the old one after its last frame
        elif old is not None:
            old.close()
        m = new.package.manifest
        log.info("model %s %s active (%s)", m.name, m.version, new.backend.info.summary())

    def set_threshold(self, value: float) -> None:
        with self._lock:
            self._apply(cfgmod.apply_patch(self.config, {"model": {"score_threshold": value}}, "threshold"))

    def _set_threshold(self, value: float | None) -> None:
        assert self._model is not None
        base = self._model.package.manifest.decoder
        self._model.decoder = base.with_threshold(value) if value is not None else base

    def _load(self, cfg: EdgeInferConfig) -> LoadedModel:
        return load_configured(cfg)[0]  # verifies every sha256 before anything loads

    # -- pipeline ----------------------------------------------------------------------------------
    def _open_source(self, cfg: EdgeInferConfig) -> Source:
        s = cfg.source
        try:
            return open_source(s.uri, s.live, s.loop, s.fps) if s.uri else demo_source()
        except SourceError as exc:
            self.last_error = str(exc)
            raise

    def _sinks(self, cfg: EdgeInferConfig) -> list[Sink]:
        o = cfg.output
        sinks: list[Sink] = list(file_sinks(o))
        if self._telemetry is not None:
            sinks.append(self._telemetry.sink)
        return sinks + self._extra_sinks

    def context(self, model: LoadedModel | None = None) -> RunContext:
        model = model or self._model
        assert model is not None
        return context_for(self.config, model)

    def _model_changed(self, model: LoadedModel) -> None:
        """The first frame of a swapped-in model is about to reach the sinks: telemetry follows it exactly."""
        heap.refreeze()  # the old model is closed: let the collector see it once, in case it sits in a cycle
        if self._telemetry is not None:
            self._telemetry.sink.start(self.context(model))
            self._telemetry.emit_health()

    def _start_pipeline(self, cfg: EdgeInferConfig, source: Source | None) -> None:
        assert self._model is not None and source is not None
        self.config = cfg
        self._start_telemetry(cfg)
        sinks = self._sinks(cfg)
        ctx = self.context()
        for s in sinks:
            s.start(ctx)
        pipe = Pipeline(self._model, source, sinks, cfg.pipeline, cfg.max_frames,
                        keep_images=any(isinstance(s, AnnotatedFramesSink) for s in sinks),
                        on_model_change=self._model_changed)
        if self._telemetry is not None and hasattr(self._telemetry, "set_queue_depths_provider"):
            self._telemetry.set_queue_depths_provider(pipe.queue_depths)
        self._pipeline = pipe
        self._thread = threading.Thread(target=self._run, args=(pipe, sinks), name="edgeinfer-service", daemon=True)
        self._thread.start()

    def _run(self, pipe: Pipeline, sinks: list[Sink]) -> None:
        summary: dict[str, Any] = {}
        try:
            summary = pipe.run()
        except Exception as exc:
            self.last_error = str(exc)
            log.error("pipeline stopped: %s", exc)
            summary = pipe.summary()
        finally:
            self.last_summary = summary
            for s in sinks:
                try:
                    s.close(summary)
                except Exception:
                    log.exception("sink %s failed to close", type(s).__name__)

    def _stop_pipeline(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline.source.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pipeline, self._thread = None, None

    def _restart_pipeline(self, cfg: EdgeInferConfig, source: Source | None) -> None:
        self._stop_pipeline()
        if any(getattr(cfg, k) != getattr(self.config, k) for k in _TELEMETRY_SECTIONS):
            self._stop_telemetry(0.0)  # the outbox keeps what was not sent; the new service sends it
        self._start_pipeline(cfg, source if source is not None else self._open_source(cfg))

    # -- telemetry ---------------------------------------------------------------------------------
    def _start_telemetry(self, cfg: EdgeInferConfig) -> None:
        if self._telemetry is not None:
            return
        if self._transport is None and cfg.telemetry.transport == "none":
            return
        from .telemetry.service import TelemetryService

        self._telemetry = TelemetryService.from_config(cfg, self.context(), transport=self._transport)
        self._telemetry.start()

    def _stop_telemetry(self, drain_timeout_s: float | None) -> int:
        if self._telemetry is None:
            return 0
        timeout = self.config.telemetry.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        left = self._telemetry.drain(timeout)
        self._telemetry.close()
        self._telemetry = None
        return left

    # -- introspection -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        p = self._pipeline
        return self._swapping.is_set() or (p is not None and p.in_flight > 0)

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.busy:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)  # polls a flag flipped by another thread; bounded by the deadline
        return True

    def snapshot(self) -> bytes:
        p = self._pipeline
        if p is None or p.latest is None or p.latest_image is None:
            raise EdgeInferError("no frame has been processed yet", "try again once the source delivers frames")
        ok, buf = cv2.imencode(".jpg", annotate(p.latest, p.latest_image), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise EdgeInferError("could not encode the snapshot", "check OpenCV's JPEG support")
        return buf.tobytes()

    def stats(self) -> dict[str, Any]:
        p = self._pipeline
        if p is not None:
            return p.summary()
        return self.last_summary or {}

    def status(self) -> dict[str, Any]:
        m = self._model
        model = None
        if m is not None:
            mf = m.package.manifest
            model = {"name": mf.name, "version": mf.version, "sha256": m.package.model_sha256, "task": mf.task}
        return {"model": model, "backend": m.backend.info.to_dict() if m else None, "running": self.running,
                "last_error": self.last_error, "config_version": self.config_version}
