"""The rule engine: per rule and source, a small state machine driven by a monotonic clock.

armed --(condition held over N frames / the window)--> fired (hit returned, unless in cooldown)
fired --(relaxed condition failed for clear_frames frames in a row)--> armed

Cooldowns and windows are measured on ``clock(result)``: by default ``time.monotonic()`` when the
frame is evaluated, so a wall-clock step (NTP, a device that boots in 1970, a manual change) neither
silences a cooldown rule nor stretches a window. Evidence keeps the frames' wall-clock ``ts``.
``frame_time`` replays recorded frames on their own timestamps instead.

The engine is pure: it returns hits; the telemetry sink turns them into alert events and actions.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..types import FrameResult
from .config import RuleConfig
from .matcher import Item, frame_matches, items_of


@dataclass(slots=True)
class RuleHit:
    rule: RuleConfig
    result: FrameResult
    items: list[Item]  # the matching items of the triggering frame
    matched: int  # matching frames (run length, or matches in the window)
    considered: int  # frames looked at (N, or frames in the window)
    since_ts: float  # frame time the run / window began


#: The time base of one frame, in seconds: only differences matter.
FrameClock = Callable[[FrameResult], float]


def monotonic_clock(result: FrameResult) -> float:
    """The default: monotonic time at evaluation (FrameResult carries no monotonic capture stamp)."""
    return time.monotonic()


def frame_time(result: FrameResult) -> float:
    """The frame's own wall-clock ``ts``: replaying recorded frames faster or slower than they were taken."""
    return result.ts


@dataclass(slots=True)
class _State:
    fired: bool = False
    run: int = 0
    run_start: float = 0.0  # wall clock, for the evidence
    clear_run: int = 0
    first_t: float | None = None  # clock
    last_fire: float | None = None  # clock
    window: deque[tuple[float, bool, float]] = field(default_factory=deque)  # (clock, matched, wall clock)


class RuleEngine:
    """``rules`` for every frame; a stream with rules of its own (``stream_rules``, replaced in place with
    ``set_stream_rules``) uses those instead. Each rule keeps its state per stream (or per source)."""

    def __init__(self, rules: list[RuleConfig], clock: FrameClock = monotonic_clock,
                 stream_rules: dict[str, list[RuleConfig]] | None = None) -> None:
        self.rules = [r for r in rules if r.enabled]
        self.clock = clock
        self._states: dict[tuple[str, str], _State] = {}
        self._stream_rules: dict[str, list[RuleConfig]] = {}
        self.set_stream_rules(stream_rules or {})

    def set_stream_rules(self, stream_rules: dict[str, list[RuleConfig]]) -> None:
        """The streams' own rules now (an update): a rule a stream no longer has forgets its state there."""
        new = {sid: [r for r in rules if r.enabled] for sid, rules in stream_rules.items()}
        self._states = {(name, key): st for (name, key), st in self._states.items()
                        if key not in new or any(r.name == name for r in new[key])}
        self._stream_rules = new

    def evaluate(self, result: FrameResult) -> list[RuleHit]:
        key = result.stream if result.stream is not None else result.source
        rules = self._stream_rules.get(key, self.rules) if result.stream is not None else self.rules
        if not rules:
            return []
        items = items_of(result)
        now = self.clock(result)
        hits = []
        for rule in rules:
            state = self._states.setdefault((rule.name, key), _State())
            if (hit := _step(rule, state, items, result, now)) is not None:
                hits.append(hit)
        return hits


def _step(rule: RuleConfig, st: _State, items: list[Item], result: FrameResult, now: float) -> RuleHit | None:
    ts = result.ts
    ok, hits = frame_matches(items, rule.when)
    if st.fired:
        relaxed_ok = ok or frame_matches(items, rule.when, rule.hysteresis.score_margin)[0]
        st.clear_run = 0 if relaxed_ok else st.clear_run + 1
        if st.clear_run >= rule.hysteresis.clear_frames:
            st.fired = False
    if ok:
        if st.run == 0:
            st.run_start = ts
        st.run += 1
    else:
        st.run = 0
    if st.first_t is None:
        st.first_t = now
    over = rule.over
    if over.window_s is not None:
        st.window.append((now, ok, ts))
        while st.window and st.window[0][0] <= now - over.window_s:
            st.window.popleft()
        matched, considered = sum(m for _, m, _ in st.window), len(st.window)
        since = st.window[0][2]
        triggered = now - st.first_t >= over.window_s and matched >= over.min_ratio * considered
    else:
        matched, considered, since = st.run, over.frames or 1, st.run_start
        triggered = st.run >= considered
    if not triggered or st.fired:
        return None
    if st.last_fire is not None and now - st.last_fire < rule.cooldown_s:
        return None
    st.fired, st.last_fire, st.clear_run = True, now, 0
    return RuleHit(rule, result, hits, matched, considered, since)
