"""The run session's health gate: watches every result (as a sink), holds the model a candidate replaced,
and asks the session to keep or roll back once the candidate's probation has a verdict (probation.py).

Threads: results and model changes arrive on the pipeline's sink thread; ``begin``/``end`` come from the
session under its lock; a verdict is handed to ``on_verdict`` once, from whichever thread reached it (the
session settles it on a thread of its own).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import EdgeInferConfig, ModelConfig
from .model import LoadedModel
from .probation import Baseline, FrameFigures, Probation, ProbationConfig, Verdict
from .sinks.base import RunContext
from .types import FrameResult

log = logging.getLogger(__name__)


@dataclass
class Switch:
    """A model switch on probation: the proven model kept loaded until the candidate is judged."""

    probation: Probation
    previous: LoadedModel  # the last proven model (the rollback target), open
    previous_model_cfg: ModelConfig
    candidate: LoadedModel
    candidate_cfg: EdgeInferConfig
    live: bool = False  # the candidate's results are arriving (a hot swap: after its first frame)
    decided: bool = False


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _version(model: LoadedModel) -> str:
    return model.package.manifest.version


class HealthGate:
    def __init__(self, on_verdict: Callable[[Switch, Verdict], None], size: int = 300) -> None:
        self._on_verdict = on_verdict
        self._lock = threading.Lock()
        self._baseline = Baseline(size)
        self.switch: Switch | None = None
        self.rollback: dict[str, Any] | None = None  # the latest rollback in this process

    # -- sink (the pipeline's sink thread) -------------------------------------------------------
    def start(self, ctx: RunContext) -> None:
        pass

    def close(self, summary: dict[str, Any]) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        figures = FrameFigures.of(result)
        with self._lock:
            sw = self.switch
            if sw is None or not sw.live or sw.decided:
                self._baseline.add(figures)
                return
            verdict = sw.probation.record(figures)
            if verdict is not None:
                sw.decided = True
        if verdict is not None:
            self._on_verdict(sw, verdict)

    def model_changed(self, model: LoadedModel) -> None:
        """A swapped-in model's first result is next (hot swaps only)."""
        with self._lock:
            sw = self.switch
            if sw is not None and model is sw.candidate:
                sw.live = True

    # -- session (under the session's lock) ------------------------------------------------------
    def begin(self, cfg: ProbationConfig, previous: LoadedModel, previous_model_cfg: ModelConfig,
              candidate: LoadedModel, candidate_cfg: EdgeInferConfig, hot: bool) -> Switch:
        """Put ``candidate`` on probation against ``previous``. A switch during another probation keeps the
        proven model of that one as the rollback target (the caller closes the superseded candidate)."""
        with self._lock:
            self._baseline.resize(cfg.baseline_frames)
            prior = self.switch
            if prior is not None:
                previous, previous_model_cfg = prior.previous, prior.previous_model_cfg
                prior.decided = True
            probation = Probation(cfg, self._baseline.figures(), _version(candidate), _version(previous),
                                  since=_utc_now())
            self.switch = Switch(probation, previous, previous_model_cfg, candidate, candidate_cfg, live=not hot)
            log.info("model %s on probation for %g s / %d results against %s", probation.candidate_version,
                     cfg.window_s, cfg.min_frames, probation.previous_version)
            return self.switch

    def pipeline_failed(self) -> None:
        """The pipeline stopped on an error: during probation it counts against the candidate."""
        with self._lock:
            sw = self.switch
            if sw is None or sw.decided:
                return
            verdict = sw.probation.failed_once()
            if verdict is not None:
                sw.decided = True
        if verdict is not None:
            self._on_verdict(sw, verdict)

    def abandon(self) -> Switch | None:
        """The run stops: the switch under way, if any (its previous model is the caller's to close)."""
        with self._lock:
            sw, self.switch = self.switch, None
            if sw is not None:
                sw.decided = True
            return sw

    def kept(self, sw: Switch) -> None:
        """The candidate passed: its results become the baseline."""
        with self._lock:
            if self.switch is sw:
                self.switch = None
                self._baseline.replace(sw.probation.results)

    def rolled_back(self, sw: Switch, reason: str) -> dict[str, Any]:
        with self._lock:
            if self.switch is sw:
                self.switch = None
            self.rollback = {"from": sw.probation.candidate_version, "to": sw.probation.previous_version,
                             "reason": reason, "at": _utc_now(),
                             "sha256": sw.candidate.package.model_sha256}
            return dict(self.rollback)

    def state(self) -> dict[str, Any]:
        """For status() and health: the probation under way and the latest rollback (None when none)."""
        with self._lock:
            sw = self.switch
            probation = sw.probation.state() if sw is not None and not sw.decided else None
            rollback = None
            if self.rollback is not None:
                rollback = {k: v for k, v in self.rollback.items() if k != "sha256"}
            return {"probation": probation, "rollback": rollback}
