"""Liveness and readiness of the device process, from the run session's state and the recorder's clock.

* alive (``/healthz``): the process answers and the run is supervised: starting, running, waiting for its
  source, or restarting a failed pipeline; not finished, failed, stopped, nor stalled (running, the source not
  waiting, and no frame for ``stall_s``). A process still waiting for its first configuration is alive.
* ready (``/readyz``): a model is loaded and a frame was inferred within ``ready_within_s``, or the source is
  known to be waiting (a camera that is down: the device does all it can).

The Greengrass component decides on the same verdict whether to report ERRORED (greengrass/app.py), so the
endpoints and the component's state cannot disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from .config import ServeConfig
from .recorder import Recorder

SUPERVISED = ("starting", "running", "waiting", "restarting")


class Session(Protocol):
    """What the checks read of a RunSession."""

    config: Any

    def state(self) -> tuple[str, str | None]: ...

    def status(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def snapshot(self) -> bytes: ...

    @property
    def telemetry(self) -> Any: ...


@dataclass(frozen=True)
class Verdict:
    ok: bool
    state: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "state": self.state, "reason": self.reason}


def _window(base_s: float, fps: float | None, intervals: int) -> float:
    """``base_s``, stretched for a source paced slower than ``intervals`` frames in it."""
    return max(base_s, intervals / fps) if fps else base_s


def _silent_s(rec: Recorder, now: float) -> float | None:
    """Seconds since the last frame (or since the pipeline started, before its first frame)."""
    last = rec.last_result_at
    if last is None or (rec.pipeline_started is not None and rec.pipeline_started > last):
        last = rec.pipeline_started
    return None if last is None else now - last


def liveness(session: Session | None, rec: Recorder, cfg: ServeConfig, now: float | None = None) -> Verdict:
    if session is None:
        return Verdict(True, "unconfigured", "waiting for a configuration")
    state, reason = session.state()
    if state not in SUPERVISED:
        return Verdict(False, state, reason or f"the run is {state}")
    if state == "running":
        stall = _window(cfg.stall_s, session.config.source.fps, 10)
        silent = _silent_s(rec, time.monotonic() if now is None else now)
        if silent is not None and silent > stall:
            return Verdict(False, "stalled", f"no frame for {silent:.0f} s (more than {stall:.0f} s) while the "
                           "source is not waiting")
    return Verdict(True, state, reason)


def readiness(session: Session | None, rec: Recorder, cfg: ServeConfig, now: float | None = None) -> Verdict:
    if session is None:
        return Verdict(False, "unconfigured", "waiting for a configuration")
    state, reason = session.state()
    if state == "waiting":
        return Verdict(True, state, reason)
    if state != "running":
        return Verdict(False, state, reason or f"the run is {state}")
    if session.status().get("model") is None:
        return Verdict(False, state, "no model loaded")
    within = _window(cfg.ready_within_s, session.config.source.fps, 3)
    last = rec.last_result_at
    if last is None:
        return Verdict(False, state, "no frame inferred yet")
    age = (time.monotonic() if now is None else now) - last
    if age > within:
        return Verdict(False, state, f"last frame inferred {age:.0f} s ago (more than {within:.0f} s)")
    return Verdict(True, state, None)

