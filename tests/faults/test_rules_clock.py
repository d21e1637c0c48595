"""Rule cooldowns and windows run on a monotonic clock: a wall-clock step (NTP, a manual change)
neither silences a cooldown rule nor stretches a window; evidence keeps the frames' wall-clock time.

On main a 1 h backward step kept a 30 s cooldown rule silent for the hour: ``ts - last_fire`` was
negative until the wall clock caught up.
"""

from __future__ import annotations

import time
from typing import Any

from edgeinfer.core.rules.config import RuleConfig
from edgeinfer.core.rules.engine import RuleEngine, frame_time
from edgeinfer.core.types import FrameResult
from tests.telemetry.synthetic import detection, frame

T0 = 1_700_000_000.0
HOUR = 3600.0


class Steps:
    """A monotonic clock the test moves on: ``clock.t += dt``."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self, result: FrameResult) -> float:
        return self.t


def rule(**kw: Any) -> list[RuleConfig]:
    return [RuleConfig.model_validate({"name": "door", **kw})]


def person(i: int, ts: float) -> FrameResult:
    return frame(i, ts, [detection("person", 0.9)])


def nobody(i: int, ts: float) -> FrameResult:
    return frame(i, ts, [])


def test_a_backward_wall_clock_step_does_not_silence_a_cooldown_rule() -> None:
    clock = Steps()
    eng = RuleEngine(rule(over={"frames": 1}, cooldown_s=30), clock=clock)
    assert eng.evaluate(person(0, T0))  # fires
    clock.t += 1
    assert not eng.evaluate(nobody(1, T0 + 1))  # clears
    fired = []
    for i in range(2, 2 + 600):  # ten minutes of detections, one a second, after the clock stepped back 1 h
        clock.t += 1
        ts = T0 - HOUR + i
        for hit in eng.evaluate(person(i, ts)):
            fired.append(i)
            assert hit.result.ts == ts and T0 - HOUR < hit.since_ts <= ts  # evidence: wall clock, as the frames said
        if i % 3 == 0:
            clock.t += 1
            eng.evaluate(nobody(i, ts))  # incidents come and go
    # every 30 s of monotonic time one alert: the first right when the cooldown of the alert at t=1000 ends
    assert fired and fired[0] <= 31
    assert 15 <= len(fired) <= 30


def test_with_the_real_monotonic_clock_the_cooldown_ends_on_time_after_a_backward_step() -> None:
    eng = RuleEngine(rule(over={"frames": 1}, cooldown_s=0.3))  # the default clock: time.monotonic()
    assert eng.evaluate(person(0, time.time()))
    eng.evaluate(nobody(1, time.time()))
    start = time.monotonic()
    i, hits = 2, []
    while not hits and time.monotonic() - start < 5.0:  # a deadline, not a sleep: frames arrive as fast as they can
        hits = eng.evaluate(person(i, time.time() - HOUR))
        if not hits:
            eng.evaluate(nobody(i, time.time() - HOUR))
        i += 1
    took = time.monotonic() - start
    assert hits, "the cooldown rule stayed silent after the wall clock stepped back an hour"
    assert 0.25 <= took < 2.0, took


def test_a_forward_wall_clock_step_does_not_end_a_cooldown_early() -> None:
    clock = Steps()
    eng = RuleEngine(rule(over={"frames": 1}, cooldown_s=30), clock=clock)
    assert eng.evaluate(person(0, T0))
    clock.t += 1
    eng.evaluate(nobody(1, T0 + 1))
    clock.t += 1
    assert not eng.evaluate(person(2, T0 + HOUR))  # wall clock jumped an hour ahead: still within the 30 s
    clock.t += 30
    eng.evaluate(nobody(3, T0 + HOUR + 30))
    clock.t += 1
    assert eng.evaluate(person(4, T0 + HOUR + 31))


def test_a_window_is_measured_on_the_monotonic_clock() -> None:
    clock = Steps()
    eng = RuleEngine(rule(over={"window_s": 2.0, "min_ratio": 0.5}), clock=clock)
    hits = []
    for i in range(40):  # 10 fps for 4 s of monotonic time; the wall clock jumps back an hour at frame 5
        ts = T0 + i / 10 - (HOUR if i >= 5 else 0.0)
        clock.t = 1000.0 + i / 10
        hits += [(i, h) for h in eng.evaluate(person(i, ts))]
    assert [i for i, _ in hits] == [20]  # 2 s of monotonic time after the first frame, not an hour
    _, h = hits[0]
    assert h.since_ts == T0 + 1 / 10  # the window's first frame (frame 0 has left it), in wall-clock time
    assert h.result.ts == T0 + 20 / 10 - HOUR


def test_frame_time_replays_recorded_frames_on_their_own_timestamps() -> None:
    eng = RuleEngine(rule(over={"frames": 1}, cooldown_s=30), clock=frame_time)
    fired = [i for i in range(100) if eng.evaluate(person(i, T0 + i)) or eng.evaluate(nobody(i, T0 + i + 0.5))]
    assert fired == [0, 30, 60, 90]
