"""The rule engine: per rule and source, a small state machine driven by frame time.

armed --(condition held over N frames / the window)--> fired (hit returned, unless in cooldown)
fired --(relaxed condition failed for clear_frames frames in a row)--> armed

The engine is pure: it returns hits; the telemetry sink turns them into alert events and actions.
"""

from __future__ import annotations

from collections import deque
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


@dataclass(slots=True)
class _State:
    fired: bool = False
    run: int = 0
    run_start: float = 0.0
    clear_run: int = 0
    first_ts: float | None = None
    last_fire: float | None = None
    window: deque[tuple[float, bool]] = field(default_factory=deque)


class RuleEngine:
    def __init__(self, rules: list[RuleConfig]) -> None:
        self.rules = [r for r in rules if r.enabled]
        self._states: dict[tuple[str, str], _State] = {}

    def evaluate(self, result: FrameResult) -> list[RuleHit]:
        if not self.rules:
            return []
        items = items_of(result)
        hits = []
        for rule in self.rules:
            state = self._states.setdefault((rule.name, result.source), _State())
            if (hit := _step(rule, state, items, result)) is not None:
                hits.append(hit)
        return hits


def _step(rule: RuleConfig, st: _State, items: list[Item], result: FrameResult) -> RuleHit | None:
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
    if st.first_ts is None:
        st.first_ts = ts
    over = rule.over
    if over.window_s is not None:
        st.window.append((ts, ok))
        while st.window and st.window[0][0] <= ts - over.window_s:
            st.window.popleft()
        matched, considered = sum(m for _, m in st.window), len(st.window)
        since = st.window[0][0]
        triggered = ts - st.first_ts >= over.window_s and matched >= over.min_ratio * considered
    else:
        matched, considered, since = st.run, over.frames or 1, st.run_start
        triggered = st.run >= considered
    if not triggered or st.fired:
        return None
    if st.last_fire is not None and ts - st.last_fire < rule.cooldown_s:
        return None
    st.fired, st.last_fire, st.clear_run = True, ts, 0
    return RuleHit(rule, result, hits, matched, considered, since)
