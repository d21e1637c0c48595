"""One run session: model + source + pipeline + sinks + telemetry, for every mode.

`edgeinfer run`, the Greengrass component and the IoT Edge module all drive this one object; they only
translate their control surface (flags and signals / component configuration and commands / twin and
methods) onto ``start``, ``apply``, ``reload_model``, ``set_threshold``, ``snapshot``, ``status``, ``stop``.

* Updates are transactional (see staging.py): the new pieces are built and checked first — model loaded,
  warmed up and its decoder run on the warm-up output; source opened; folders checked; transport opened —
  and only then is the old pipeline retired. Any failure leaves the old pipeline running unchanged and
  raises one EdgeInferError. A model-only change is swapped in between frames, with no gap.
* Supervision: a pipeline that dies on an error is restarted with backoff over the same pieces when its
  source is live or looping; a finite source that fails ends in state ``error``; one that ends, ``finished``.
* ``status()`` is the truth about what runs: state (running / waiting / restarting / finished / error /
  stopped) with its reason, the model and backend in use, telemetry or sinks degraded and why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from . import config as cfgmod
from . import heap
from .annotate import annotate
from .config import EdgeInferConfig
from .errors import ConfigError, EdgeInferError, ModelError
from .fallback.bridge import Bridge
from .gate import HealthGate, Switch
from .hybrid import HybridSlot
from .model import LoadedModel
from .modelpkg.keys import KeySource
from .modelpkg.trust import record_activated
from .pipeline import Pipeline
from .probation import Verdict
from .progress import Progress, no_progress
from .redact import redact, redact_any
from .rollbacks import RolledBack
from .runner import context_for
from .shadow_runner import ShadowRunner, ShadowSlot
from .sinks.base import RunContext, Sink
from .sinks.files import AnnotatedFramesSink, write_json_atomic
from .staging import Parts, Staged, pipeline_differs, stage, stage_telemetry, telemetry_differs
from .streams.apply import apply_thresholds, health_view, stream_states, update_streams
from .streams.mux import MultiSource

log = logging.getLogger(__name__)

#: seconds a retiring pipeline gets to drain the frames it read before it is aborted, then to end
RETIRE_GRACE_S = 5.0
RESTART_BACKOFF_S = (1.0, 30.0)
TELEMETRY_RETRY_S = 30.0


def _disk_full(exc: EdgeInferError) -> bool:
    """SQLite says "database or disk is full"; the OS, "No space left on device"."""
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text


class _Runner(threading.Thread):
    """Runs pipelines over one set of parts until stopped, restarting a failed one with backoff."""

    def __init__(self, session: RunSession, parts: Parts, backoff_s: tuple[float, float]) -> None:
        super().__init__(name="edgeinfer-run", daemon=True)
        self.session, self.parts = session, parts
        self.backoff_s = backoff_s
        self.pipeline: Pipeline | None = None
        self.phase = "starting"  # running | restarting | finished | error | stopped
        self.reason: str | None = None
        self.restarts = 0
        self.bridge: Bridge | None = None  # frames to the cloud fallback while waiting to restart
        self._stopping = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        delay = self.backoff_s[0]
        try:
            while not self._stopping.is_set():
                pipe = self.session._new_pipeline(self.parts)
                self.pipeline = pipe
                self.phase, self.reason = "running", None
                error = self.session._run_pipeline(self.parts, pipe)
                if self._stopping.is_set():
                    break
                if error is None:
                    self.phase = "finished"
                    log.info("source %s ended", self.parts.source.uri)
                    break
                self.session._gate.pipeline_failed()  # during a probation it counts against the new model
                restartable = self.parts.source.live or self.parts.config.source.loop
                if not restartable:
                    self.phase, self.reason = "error", error
                    self.session._state_changed(self.parts)
                    break
                if pipe.frames:
                    delay = self.backoff_s[0]
                self.phase, self.reason = "restarting", f"{error} (restart in {delay:.0f} s)"
                log.error("pipeline stopped: %s; restarting in %.0f s", error, delay)
                self.session._state_changed(self.parts)
                if self._wait_restart(delay):
                    break
                delay = min(delay * 2, self.backoff_s[1])
                self.restarts += 1
        except Exception as exc:  # the supervisor itself must never die silently
            log.exception("run supervisor failed")
            self.phase, self.reason = "error", f"run supervisor failed: {exc}"
        finally:
            if self.phase not in ("finished", "error"):
                self.phase = "stopped"
            self.ended.set()

    def _wait_restart(self, delay: float) -> bool:
        """The backoff before a restart; True when stopped meanwhile. With the cloud fallback on and a live source,
        the camera's frames go to the cloud during it (trigger ``unavailable``, core/fallback/bridge.py)."""
        bridge = self.session._hybrid.bridge(self.parts.source, self.parts.model.package.manifest.task)
        if bridge is None:
            return self._stopping.wait(delay)
        self.bridge = bridge
        if not self._stopping.is_set():  # retire() sets _stopping, then cancels the bridge it sees
            bridge.run(delay)
        self.bridge = None
        return self._stopping.is_set()

    def retire(self, grace_s: float = RETIRE_GRACE_S) -> bool:
        """Stop after the frames already read (aborting after ``grace_s``); True when the thread ended."""
        self._stopping.set()
        if (bridge := self.bridge) is not None:
            bridge.cancel()
        pipe = self.pipeline
        if pipe is not None:
            pipe.stop()
        if self.ended.wait(grace_s):
            return True
        if self.pipeline is not None:
            self.pipeline.abort()
        if self.ended.wait(grace_s):
            return True
        log.error("the pipeline did not end within %.0f s of being aborted (a sink or the runtime is stuck); "
                  "leaving its thread behind", 2 * grace_s)
        return False


class RunSession:
    def __init__(self, config: EdgeInferConfig, transport: Any | None = None, extra_sinks: list[Sink] | None = None,
                 progress: Progress = no_progress, restart_backoff_s: tuple[float, float] = RESTART_BACKOFF_S,
                 key_source: KeySource | None = None, host_state: Callable[[], dict[str, Any]] | None = None,
                 hybrid: HybridSlot | None = None) -> None:
        """``host_state``: an adapter's account of what its host runtime does not offer (the Greengrass
        nucleus's missing operations), carried in every health event and in ``status()``. ``hybrid``: the cloud
        fallback and captures slot (default: clients found by entry point; tests inject theirs)."""
        self.config = config
        self._host_state = host_state
        self._keys = key_source  # the adapter's store for model decryption keys (Greengrass secrets, IoT Edge HSM)
        self._injected = transport  # an adapter's transport (IPC, module outputs) outlives telemetry rebuilds
        self._extra_sinks = list(extra_sinks or [])
        self._progress = progress
        self._backoff = restart_backoff_s
        self._lock = threading.RLock()  # serialises control operations (start, apply, reload, stop)
        self._parts: Parts | None = None
        self._runner: _Runner | None = None
        self._swapping = threading.Event()
        self._listeners: list[Callable[[EdgeInferConfig], None]] = []
        self._probation_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._gate = HealthGate(self._on_verdict)
        self._shadow = ShadowSlot()
        self._hybrid = hybrid or HybridSlot(lambda: self.telemetry)
        self.shadow_promoted: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.last_summary: dict[str, Any] | None = None
        self.first_result_at: float | None = None
        self.config_version = 0
        self._start_error: str | None = None  # why the last start failed (nothing runs)
        self._telemetry_off: str | None = None  # why telemetry could not open at start (a full disk)
        self._starting = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Build every piece and start the run. Raises EdgeInferError (nothing left open) when it cannot."""
        with self._lock:
            if self._parts is not None:
                return
            self._starting = True
            try:
                self._start()
            finally:
                self._starting = False

    def _start(self) -> None:
        try:
            staged = stage(self.config, None, self._injected, self._progress, key_source=self._keys)
            self._refuse_rolled_back(staged)
        except EdgeInferError as exc:
            self.last_error = self._start_error = str(exc)
            raise
        assert staged.model is not None and staged.source is not None and staged.files is not None
        parts = Parts(self.config, staged.model, staged.source, staged.files, timings=staged.timings)
        apply_thresholds(parts.model, self.config, parts.source)
        try:
            parts.telemetry = self._open_telemetry(staged, parts)
        except EdgeInferError as exc:
            if not _disk_full(exc):
                staged.discard()
                raise
            # a full disk is a fault that clears, not a setting: infer now, attach telemetry once it opens
            self._telemetry_off = f"telemetry off until the outbox opens: {exc.problem}"
            log.error("%s; inference starts without it and retries every %.0f s", self._telemetry_off,
                      TELEMETRY_RETRY_S)
            self._retry_telemetry(parts)
        except BaseException:
            staged.discard()
            raise
        try:
            self._shadow.runner = self._build_shadow(self.config, None)
            self._hybrid.install(self._hybrid.prepare(self.config))
        except BaseException:
            self._set_shadow(None)
            parts.close()
            raise
        self._parts, self._start_error = parts, None
        self._start_runner(parts)
        self._activated(parts.config, parts.model)

    def stop(self, drain_timeout_s: float | None = None, extra_summary: dict[str, Any] | None = None) -> int:
        """Stop the run; deliver telemetry for up to ``drain_timeout_s``; return the events left in the outbox.

        The last summary (plus ``extra_summary``, load times and telemetry) goes to ``output.dir/summary.json``."""
        with self._lock:
            parts, self._parts = self._parts, None
            if parts is None:
                return 0
            self._retire_runner()
            self._set_shadow(None)
            if self.last_summary is not None:
                self.last_summary.update(self._hybrid.state())  # answers that came after the pipeline ended
            self._hybrid.shutdown()
            if (sw := self._gate.abandon()) is not None and sw.previous is not parts.model:
                sw.previous.close()
            timeout = parts.config.telemetry.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
            left, telemetry = 0, parts.telemetry
            if self.last_summary is not None:
                self.last_summary.update(extra_summary or {}, load_ms=parts.timings)
            if telemetry is not None:
                left = telemetry.drain(timeout)
                if self.last_summary is not None:
                    self.last_summary["telemetry"] = {
                        "transport": parts.config.telemetry.transport, "mode": parts.config.telemetry.mode,
                        "left_in_outbox": left, **telemetry.snapshot().to_dict()}
            parts.close(0.0)
            if self.last_summary is not None:
                self._write_summary(parts.config, self.last_summary)
            return left

    @property
    def running(self) -> bool:
        r = self._runner
        return r is not None and r.is_alive() and r.phase in ("starting", "running", "restarting")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the run to end by itself (a finite source, or an error it will not restart from)."""
        r = self._runner
        return True if r is None else r.ended.wait(timeout_s)

    # -- configuration -----------------------------------------------------------------------------
    def apply_patch(self, patch: dict[str, Any]) -> EdgeInferConfig:
        with self._lock:
            return self.apply(cfgmod.apply_patch(self.config, patch))

    def replace_config(self, full: dict[str, Any]) -> EdgeInferConfig:
        with self._lock:
            merged = cfgmod.deep_merge({"device_id": self.config.device_id}, full)
            return self.apply(cfgmod.validate(merged, "configuration"))

    def apply(self, new: EdgeInferConfig) -> EdgeInferConfig:
        """Make ``new`` the running config, as a whole or not at all."""
        with self._lock:
            current = self._parts
            if current is None:  # not started (or stopped): nothing runs, so there is nothing to keep
                self.config = new
                return new
            old = current.config
            self._swapping.set()
            shadow = self._shadow.runner
            try:
                staged = stage(new, current, self._injected, self._progress, key_source=self._keys)
                self._refuse_rolled_back(staged)
                try:
                    shadow = self._build_shadow(new, shadow)
                    hybrid = self._hybrid.prepare(new)
                except BaseException:
                    staged.discard()
                    if shadow is not self._shadow.runner and shadow is not None:
                        shadow.close()
                    raise
            except EdgeInferError as exc:
                self.last_error = str(exc)
                raise
            finally:
                self._swapping.clear()
            try:
                self._commit(current, staged)
            except BaseException:
                staged.discard()
                if shadow is not self._shadow.runner and shadow is not None:
                    shadow.close()
                if hybrid is not None and hybrid is not self._hybrid.parts:
                    hybrid.close()
                raise
            self._set_shadow(shadow)
            self._hybrid.install(hybrid)
            self._activated(new, staged.model)
            if new.log_level != old.log_level:
                logging.getLogger("edgeinfer").setLevel(new.log_level)
            self.config = new
            self.config_version += 1
            log.info("configuration applied (version %d)", self.config_version)
            for fn in self._listeners:
                fn(new)
            return new

    def _commit(self, current: Parts, staged: Staged) -> None:
        old, new = current.config, staged.config
        runner = self._runner
        live = runner is not None and runner.is_alive() and runner.pipeline is not None and runner.phase == "running"
        prior = self._gate.switch
        on_probation = staged.model is not None and new.probation.enabled and (
            prior is not None or staged.model.package.model_sha256 != current.model.package.model_sha256)
        keep_old = on_probation and prior is None  # the gate keeps the proven model open as the rollback target
        if staged.model is not None and prior is not None and not on_probation:  # probation switched off mid-way
            self._gate.kept(prior)
            prior.previous.close()
        if not pipeline_differs(old, new) and live:
            assert runner is not None and runner.pipeline is not None
            if staged.model is not None:  # hot swap between frames; the pipeline closes the old model
                if on_probation:
                    self._gate.begin(new.probation, current.model, old.model, staged.model, new, hot=True)
                runner.pipeline.swap_model(staged.model, keep_old=keep_old)
                current.model, current.timings = staged.model, staged.timings
            update_streams(current, old, new, staged, rules_in_place=not telemetry_differs(old, new))
            apply_thresholds(current.model, new, current.source)
            current.config = new
            self._log_model(current.model)
            return
        self._retire_runner()
        update_streams(current, old, new, staged, rules_in_place=not telemetry_differs(old, new))
        parts = Parts(new, staged.model or current.model, staged.source or current.source,
                      staged.files if staged.files is not None else current.files,
                      current.telemetry, staged.timings or current.timings)
        apply_thresholds(parts.model, new, parts.source)
        if telemetry_differs(old, new):
            if current.telemetry is not None:
                current.telemetry.drain(0.0)  # the outbox keeps what was not sent; the new service sends it
                current.telemetry.close()
                current.telemetry = None
            try:
                parts.telemetry = self._open_telemetry(staged, parts)
            except EdgeInferError:
                current.telemetry = self._reopen_telemetry(current)
                self._start_runner(current)
                raise
        if staged.source is not None:
            current.source.close()
        if staged.model is not None and on_probation:
            self._gate.begin(new.probation, current.model, old.model, staged.model, new, hot=False)
        if staged.model is not None and not keep_old:
            current.model.close()
        self._parts = parts
        self._start_runner(parts)
        self._log_model(parts.model)

    # -- model -------------------------------------------------------------------------------------
    def reload_model(self, path: str | None = None) -> dict[str, Any]:
        """Load (again) the configured model, or the package at ``path``; swapped in only once it passes the gate."""
        if path is not None and not path.strip():
            raise ConfigError("reload was given an empty model path",
                              "pass the path of a model package on the device, or omit it to reload the configured one")
        with self._lock:
            new_cfg = self.config
            if path is not None:
                new_cfg = cfgmod.apply_patch(self.config, {"model": {"path": path}}, "model reload")
            if self._parts is None:
                raise EdgeInferError("nothing is running", "start the run first")
            try:
                staged = stage(new_cfg, self._parts, self._injected, self._progress, reload_model=True,
                               key_source=self._keys)
                self._refuse_rolled_back(staged)
            except EdgeInferError as exc:
                self.last_error = str(exc)
                raise ModelError(f"model not changed: {exc.problem}", exc.fix) from exc
            self._commit(self._parts, staged)
            self._activated(new_cfg, staged.model)
            self.config = new_cfg
            return self.status()["model"]

    def set_threshold(self, value: float) -> None:
        self.apply_patch({"model": {"score_threshold": value}})

    def _activated(self, cfg: EdgeInferConfig, model: LoadedModel | None) -> None:
        """Replay protection: a newly activated signed package raises the floor, also across restarts (for a model
        on probation: once it is kept, so that a rollback to the previous version is not a replay)."""
        sw = self._gate.switch
        if sw is not None and sw.candidate is model:
            return
        if model is not None and cfg.model.path:
            record_activated(model.package, cfg.trust, cfg.resolved_state_dir())

    @staticmethod
    def _log_model(model: LoadedModel) -> None:
        m = model.package.manifest
        log.info("model %s %s active (%s)", m.name, m.version, model.backend.info.summary())

    # -- health gate (probation.py, gate.py) -------------------------------------------------------
    def add_probation_listener(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        """``fn("kept", {"version"})`` or ``fn("rolled_back", rollback)`` once the health gate settled a model
        switch (an adapter restores its last good state after a rollback)."""
        self._probation_listeners.append(fn)

    def _refuse_rolled_back(self, staged: Staged) -> None:
        """A model this device rolled back is not activated again (a new version is judged afresh)."""
        if staged.model is None:
            return
        pkg = staged.model.package
        store = RolledBack(staged.config.resolved_state_dir())
        entry = store.find(pkg.model_sha256)
        if entry is not None:
            staged.discard()
            raise ModelError(f"model {pkg.manifest.name} {pkg.manifest.version} was rolled back on this device at "
                             f"{entry.get('at')}: {entry.get('reason')}",
                             f"deploy another version (to try this one again, remove it from {store.path})")

    def _on_verdict(self, sw: Switch, verdict: Verdict) -> None:
        """From the sink or runner thread: settle on a thread of its own (a rollback takes the session lock)."""
        threading.Thread(target=self._settle, args=(sw, verdict), name="edgeinfer-probation", daemon=True).start()

    def _settle(self, sw: Switch, verdict: Verdict) -> None:
        with self._lock:
            parts = self._parts
            if parts is None or self._gate.switch is not sw:
                return  # stopped, or superseded by another switch meanwhile
            if verdict.passed:
                self._gate.kept(sw)
                sw.previous.close()  # its last frame went through before the candidate's first
                self._activated(sw.candidate_cfg, sw.candidate)
                log.info("model %s kept after probation (%s)", sw.probation.candidate_version, verdict.reason)
            else:
                self._roll_back(parts, sw, verdict)
            self._state_changed(parts, "probation_passed" if verdict.passed else "rollback")
        outcome, detail = (("kept", {"version": sw.probation.candidate_version}) if verdict.passed
                           else ("rolled_back", dict(self._gate.rollback or {})))
        for fn in self._probation_listeners:
            try:
                fn(outcome, detail)
            except Exception:
                log.exception("a probation listener failed")

    def _roll_back(self, parts: Parts, sw: Switch, verdict: Verdict) -> None:
        """Back to the proven model, kept loaded for this: a hot swap when the pipeline runs, a restart when not."""
        record = self._gate.rolled_back(sw, verdict.reason)
        runner = self._runner
        live = runner is not None and runner.is_alive() and runner.pipeline is not None and runner.phase == "running"
        if live and parts.model is sw.candidate:
            assert runner is not None and runner.pipeline is not None
            runner.pipeline.swap_model(sw.previous)  # the pipeline closes the candidate after its last frame
        else:
            live = False
            self._retire_runner()
            sw.candidate.close()
        cfg = self.config.model_copy(update={"model": sw.previous_model_cfg})
        parts.model, parts.config, self.config = sw.previous, cfg, cfg
        apply_thresholds(sw.previous, cfg, parts.source)
        if not live:
            self._start_runner(parts)
        pkg = sw.candidate.package
        RolledBack(cfg.resolved_state_dir()).add({"sha256": pkg.model_sha256, "name": pkg.manifest.name,
                                                  "version": pkg.manifest.version, "reason": verdict.reason,
                                                  "at": record["at"]})
        self.last_error = f"model {record['from']} rolled back to {record['to']}: {verdict.reason}"
        log.error("health gate: %s (new model %s, previous %s)", self.last_error, verdict.after.to_dict(),
                  verdict.before.to_dict())

    # -- shadow A/B (shadow.py, shadow_runner.py) ------------------------------------------------
    def _build_shadow(self, cfg: EdgeInferConfig, current: ShadowRunner | None) -> ShadowRunner | None:
        """The runner ``cfg.shadow`` asks for: the current one when its candidate and settings are unchanged,
        else a new one with the candidate loaded, verified and warmed up (trust rules as for any model; one
        inference thread). Raises when the candidate cannot load: the configuration is refused as a whole."""
        want = cfg.shadow
        if want.model is None:
            return None
        if current is not None and current.cfg == want:
            return current
        from .config import ModelConfig
        from .runner import load_configured

        backend = cfg.backend.model_copy(update={"threads": 1})
        candidate_cfg = cfg.model_copy(update={"model": ModelConfig(path=want.model, warmup_runs=1,
                                                                    score_threshold=cfg.model.score_threshold),
                                               "backend": backend})
        try:
            model, _ = load_configured(candidate_cfg, key_source=self._keys)
        except EdgeInferError as exc:
            raise ModelError(f"shadow model not loaded: {exc.problem}", exc.fix) from exc
        log.info("shadow model %s %s beside the active one (at most %.0f%% of the CPU)",
                 model.package.manifest.name, model.package.manifest.version, want.max_cost * 100)
        return ShadowRunner(want, model, on_agreement=self._shadow_agreement)

    def _shadow_agreement(self, runner: ShadowRunner, frames: int, agreement: float | None) -> None:
        """Promotion by configuration: once the candidate agrees enough, it becomes the active model through the
        usual switch (staged, then on probation), on a thread of its own; once per runner."""
        want = runner.cfg
        if (want.promote_at is None or frames < want.min_frames or agreement is None or agreement < want.promote_at
                or runner.promoting):
            return
        runner.promoting = True
        log.info("shadow model %s agrees %.3f with the active one over %d frames (promote_at %.3f): promoting it",
                 runner.version, agreement, frames, want.promote_at)

        def promote() -> None:
            try:
                self.apply_patch({"model": {"path": want.model}, "shadow": {"model": None}})
                self.shadow_promoted = {"version": runner.version, "agreement": round(agreement, 4),
                                        "frames": frames}
            except EdgeInferError as exc:
                log.error("shadow model %s not promoted: %s", runner.version, exc)

        threading.Thread(target=promote, name="edgeinfer-shadow-promote", daemon=True).start()

    def _set_shadow(self, runner: ShadowRunner | None) -> None:
        old, self._shadow.runner = self._shadow.runner, runner
        if old is not None and old is not runner:
            old.close()

    def _shadow_window(self) -> dict[str, Any]:
        runner = self._shadow.runner
        return {"shadow": runner.state(window=True)} if runner is not None else {}

    # -- pipelines ---------------------------------------------------------------------------------
    def _start_runner(self, parts: Parts) -> None:
        self._runner = _Runner(self, parts, self._backoff)
        self._runner.start()

    def _retire_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.retire()

    def _new_pipeline(self, parts: Parts) -> Pipeline:
        sinks = self._sinks(parts)
        keep = (any(isinstance(s, AnnotatedFramesSink) for s in sinks) or parts.config.shadow.model is not None
                or parts.config.fallback.enabled or parts.config.captures.enabled)
        pipe = Pipeline(parts.model, parts.source, sinks, parts.config.pipeline, parts.config.max_frames,
                        keep_images=keep, on_model_change=lambda m: self._model_changed(parts, m), owns_source=False)
        if parts.telemetry is not None:
            parts.telemetry.set_queue_depths_provider(pipe.queue_depths)
        return pipe

    def _sinks(self, parts: Parts) -> list[Sink]:
        sinks: list[Sink] = [*parts.files, self._gate, self._shadow]
        if parts.telemetry is not None:
            sinks.append(parts.telemetry.sink)
        sinks.append(self._hybrid)  # after telemetry: a frame's local result is out before a cloud request
        return sinks + self._extra_sinks

    def _run_pipeline(self, parts: Parts, pipe: Pipeline) -> str | None:
        """One pipeline from start to end on the runner thread; the error that ended it, if any."""
        error: str | None = None
        ctx = context_for(parts.config, parts.model)
        started: list[Sink] = []
        summary: dict[str, Any] = {}
        try:
            for s in pipe.sinks:
                s.start(ctx)
                started.append(s)
            summary = pipe.run()
        except Exception as exc:
            error = str(exc) if isinstance(exc, EdgeInferError) else f"{type(exc).__name__}: {exc}"
            self.last_error = error
            log.error("pipeline stopped: %s", error)
            summary = pipe.summary()
        finally:
            for s in started:
                try:
                    s.close(summary)
                except Exception:  # one sink's failure must not lose the others' output
                    log.exception("sink %s failed to close", type(s).__name__)
            if pipe.first_result_at is not None and self.first_result_at is None:
                self.first_result_at = pipe.first_result_at
            self.last_summary = summary
        return error

    def _model_changed(self, parts: Parts, model: LoadedModel) -> None:
        """The first frame of a swapped-in model is about to reach the sinks: telemetry follows it exactly."""
        heap.refreeze()  # the old model is closed: let the collector see it once, in case it sits in a cycle
        self._gate.model_changed(model)
        if parts.telemetry is not None:
            parts.telemetry.sink.start(context_for(parts.config, model))
            parts.telemetry.emit_health()

    # -- telemetry ---------------------------------------------------------------------------------
    def _open_telemetry(self, staged: Staged, parts: Parts) -> Any | None:
        if not staged.new_telemetry:
            return None
        from .telemetry.service import TelemetryService

        transport = staged.transport if staged.transport is not None else self._injected
        staged.transport = None  # the telemetry service owns it now (and closes it on failure)
        service = TelemetryService.from_config(parts.config, context_for(parts.config, parts.model),
                                               transport=transport)
        service.set_run_state_provider(self._run_state)  # every health event says what the run is doing
        service.sink.summary_extra = lambda: {**self._shadow_window(), **self._hybrid.window()}  # per window
        service.set_host_state_provider(self._host_state)
        service.start()
        return service

    def _run_state(self) -> dict[str, Any]:
        state, reason = self.state()
        runner = self._shadow.runner
        return {"state": state, "reason": reason and redact(reason), "degraded": [redact(d) for d in self.degraded()],
                **redact_any(self._gate.state()), "shadow": runner.state() if runner is not None else None,
                **self._hybrid.state(), **redact_any(health_view(self.streams()))}

    def report_health(self) -> None:
        """A health event now (an adapter's state changed: a configuration refused, a nucleus gap found)."""
        parts = self._parts
        if parts is not None:
            self._state_changed(parts)

    def _state_changed(self, parts: Parts, cause: str | None = None) -> None:
        """A health event now: the cloud hears of a failure or a recovery without waiting for the next one."""
        if parts.telemetry is not None:
            try:
                parts.telemetry.emit_health(cause)
            except Exception:  # telemetry trouble must never reach the supervisor
                log.exception("could not send a health event")

    def _retry_telemetry(self, parts: Parts) -> None:
        """Try to open the telemetry that could not open at start, every TELEMETRY_RETRY_S, until it does."""

        def attempt() -> None:
            with self._lock:
                if self._parts is not parts or parts.telemetry is not None:
                    return  # stopped, or replaced by an update that opened its own
                try:
                    telemetry = self._open_telemetry(stage_telemetry(Staged(parts.config), self._injected), parts)
                except EdgeInferError as exc:
                    log.info("telemetry still cannot open: %s", exc.problem)
                    self._retry_telemetry(parts)
                    return
                self._retire_runner()
                parts.telemetry, self._telemetry_off = telemetry, None
                self._start_runner(parts)
                log.info("telemetry attached: the outbox opened")

        timer = threading.Timer(TELEMETRY_RETRY_S, attempt)
        timer.daemon = True
        timer.start()

    def _reopen_telemetry(self, parts: Parts) -> Any | None:
        """After a failed update: the telemetry that ran before, again (it opened once, it opens again)."""
        try:
            return self._open_telemetry(stage_telemetry(Staged(parts.config), self._injected), parts)
        except EdgeInferError as exc:
            log.error("telemetry could not be restored after a failed update: %s", exc)
            self.last_error = str(exc)
            return None

    # -- introspection -----------------------------------------------------------------------------
    @property
    def swapping(self) -> bool:
        """A new model or config is being built (loaded, warmed up) while the old one serves."""
        return self._swapping.is_set()

    @property
    def busy(self) -> bool:
        r = self._runner
        p = r.pipeline if r is not None else None
        return self._swapping.is_set() or (p is not None and p.in_flight > 0)

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.busy:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)  # polls a flag flipped by another thread; bounded by the deadline
        return True

    @property
    def telemetry(self) -> Any | None:
        """The telemetry service of the running parts (None when telemetry is off)."""
        return self._parts.telemetry if self._parts is not None else None

    @property
    def source_uri(self) -> str:
        return self._parts.source.uri if self._parts is not None else str(self.config.source.uri)

    def context(self) -> RunContext:
        assert self._parts is not None
        return context_for(self._parts.config, self._parts.model)

    def snapshot(self, stream: str | None = None) -> bytes:
        """The latest frame with its result drawn, as JPEG: of ``stream`` when given (``sources:``), else of any."""
        r = self._runner
        p = r.pipeline if r is not None else None
        latest = (p.latest, p.latest_image) if p is not None else (None, None)
        if stream is not None:
            parts = self._parts
            ids = parts.source.ids if parts is not None and isinstance(parts.source, MultiSource) else []
            if stream not in ids:
                raise ConfigError(f"no stream named {stream!r} runs" + (f" (streams: {', '.join(ids)})" if ids else ""),
                                  "name one of the running streams, or omit stream for the latest frame of any")
            latest = p.streams.latest(stream) or (None, None) if p is not None else (None, None)
        result, image = latest
        if result is None or image is None:
            raise EdgeInferError("no frame has been processed yet", "try again once the source delivers frames")
        ok, buf = cv2.imencode(".jpg", annotate(result, image), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise EdgeInferError("could not encode the snapshot", "check OpenCV's JPEG support")
        return buf.tobytes()

    def stats(self) -> dict[str, Any]:
        r = self._runner
        if r is not None and r.pipeline is not None:
            return r.pipeline.summary()
        return self.last_summary or {}

    def state(self) -> tuple[str, str | None]:
        """(state, reason): what the run is doing now, and why when it is not inferring."""
        r, parts = self._runner, self._parts
        if self._starting:
            return "starting", None
        if parts is None or r is None:
            return ("error", self._start_error) if self._start_error else ("stopped", None)
        if r.phase in ("finished", "error", "restarting", "stopped"):
            return r.phase, r.reason
        waiting = getattr(parts.source, "waiting", None)
        if waiting:
            return "waiting", waiting
        return "running", None

    def degraded(self) -> list[str]:
        """Why the run is not doing all it should, while it infers (telemetry, sinks, backend fallback)."""
        parts = self._parts
        if parts is None:
            return []
        out: list[str] = [self._telemetry_off] if self._telemetry_off else []
        info = parts.model.backend.info
        if info.degraded and info.reason:
            out.append(f"backend: {info.reason}")
        tel = parts.telemetry
        reason = tel.degraded() if tel is not None and hasattr(tel, "degraded") else None
        if reason:
            out.append(f"telemetry: {reason}")
        for s in parts.files:
            problem = getattr(s, "error", None)
            if problem:
                out.append(f"{type(s).__name__}: {problem}")
        if isinstance(parts.source, MultiSource) and not parts.source.waiting:  # some streams deliver, not all
            out += [f"stream {sid}: {st['state']}: {st['reason']}" for sid, st in parts.source.states().items()
                    if st["state"] in ("waiting", "retrying", "error")]
        return out

    def streams(self) -> dict[str, dict[str, Any]] | None:
        """Each stream of ``sources:``: its state and reason, and what the pipeline made of its frames (None with one
        ``source:``)."""
        parts, r = self._parts, self._runner
        return stream_states(parts.source, r.pipeline if r is not None else None) if parts is not None else None

    def status(self) -> dict[str, Any]:
        parts = self._parts
        m = parts.model if parts is not None else None
        model = None
        if m is not None:
            mf = m.package.manifest
            model = {"name": mf.name, "version": mf.version, "sha256": m.package.model_sha256, "task": mf.task}
        state, reason = self.state()
        out = {"state": state, "reason": reason, "model": model, "backend": m.backend.info.to_dict() if m else None,
               "running": state in ("running", "waiting"), "degraded": self.degraded(),
               "last_error": self.last_error, "config_version": self.config_version, **self._gate.state(),
               "shadow": self._shadow.runner.state() if self._shadow.runner is not None else None,
               "shadow_promoted": self.shadow_promoted, **self._hybrid.state(), **health_view(self.streams())}
        if self._host_state is not None:
            out["nucleus"] = self._host_state()
        return redact_any(out)

    @staticmethod
    def _write_summary(cfg: EdgeInferConfig, summary: dict[str, Any]) -> None:
        if not cfg.output.dir:
            return
        try:
            write_json_atomic(Path(cfg.output.dir) / "summary.json", summary)
        except OSError as exc:
            log.error("could not write %s/summary.json: %s", cfg.output.dir, exc.strerror or exc)
