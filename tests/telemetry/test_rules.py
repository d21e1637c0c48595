"""The rule engine: conditions on label/score/count/area, N consecutive frames, time windows,
cooldown and hysteresis. Driven here by the frames' own time (``frame_time``) so each case is exact;
the default monotonic clock is proven in tests/faults/test_rules_clock.py."""

from __future__ import annotations

from typing import Any

from edgeinfer.core.rules.config import RuleConfig
from edgeinfer.core.rules.engine import RuleEngine, frame_time
from edgeinfer.core.types import FrameResult

from .synthetic import classified, detection, frame

FPS = 10.0


def engine(**rule: Any) -> RuleEngine:
    return RuleEngine([RuleConfig.model_validate({"name": "r", **rule})], clock=frame_time)


def run(eng: RuleEngine, pattern: str, score: float = 0.9, start: int = 0) -> list[int]:
    """Feed one frame per character ('x' = a person, '.' = nobody); return the frames that fired."""
    fired = []
    for i, ch in enumerate(pattern, start):
        dets = [detection("person", score)] if ch == "x" else []
        if eng.evaluate(frame(i, i / FPS, dets)):
            fired.append(i)
    return fired


def test_n_consecutive_frames() -> None:
    assert run(engine(over={"frames": 3}), "xx.xxx....xxx") == [5, 12]


def test_time_window_share_of_frames() -> None:
    eng = engine(over={"window_s": 1.0, "min_ratio": 0.7})
    # 10 frames per window; 7 of the last 10 must match, and a full window must have passed
    assert run(eng, "xxxxxxx") == []  # 0.6 s of frames: window not yet covered
    eng = engine(over={"window_s": 1.0, "min_ratio": 0.7})
    assert run(eng, "x.x.x.x.x.x.xx.xxx.x") == [17]


def test_cooldown_suppresses_a_second_incident() -> None:
    # incident at frame 1 (0.1 s), clears at 2, back at 3-4: within 2 s of the alert -> silent
    assert run(engine(over={"frames": 2}, cooldown_s=2.0), "xx.xx" + "." * 20 + "xx") == [1, 26]
    # an incident that is still on when the cooldown ends is reported then
    assert run(engine(over={"frames": 2}, cooldown_s=2.0), "xx.xx" + "x" * 20) == [1, 21]


def test_hysteresis_holds_the_alert_until_clear_for_n_frames() -> None:
    assert run(engine(over={"frames": 1}, hysteresis={"clear_frames": 3}), "x.x..x...x") == [0, 9]
    assert run(engine(over={"frames": 1}), "x.x..x...x") == [0, 2, 5, 9]  # no hysteresis: every return


def test_hysteresis_score_margin_keeps_a_flickering_score_active() -> None:
    rule = {"when": {"label": "person", "min_score": 0.7}, "hysteresis": {"score_margin": 0.2}}
    eng = engine(**rule)
    fired = []
    for i, s in enumerate([0.8, 0.6, 0.75, 0.55, 0.8, 0.3, 0.8]):  # dips to 0.6/0.55 stay above 0.5
        if eng.evaluate(frame(i, i / FPS, [detection("person", s)])):
            fired.append(i)
    assert fired == [0, 6]


def test_label_count_area_conditions() -> None:
    big, small = (0, 0, 320, 240), (0, 0, 32, 24)  # 25% and 0.25% of 640x480

    def hits(when: dict[str, Any], dets: list[Any]) -> bool:
        return bool(engine(when=when).evaluate(frame(0, 0.0, dets)))

    car = detection("car", 0.9)
    assert hits({"label": "person", "min_count": 2}, [detection(), detection()])
    assert not hits({"label": "person", "min_count": 2}, [detection(), car])
    assert hits({"label": None, "min_count": 2}, [detection(), car])
    assert not hits({"min_score": 0.95}, [detection("person", 0.9)])
    assert hits({"min_area": 0.2}, [detection(box=big)])
    assert not hits({"min_area": 0.2}, [detection(box=small)])
    assert hits({"max_area": 0.01}, [detection(box=small)])
    assert hits({"label": "person", "min_count": 0, "max_count": 0}, [car])  # absence
    assert not hits({"label": "person", "min_count": 0, "max_count": 0}, [detection()])


def test_classification_and_sources_are_tracked_separately() -> None:
    eng = engine(when={"label": "smoke", "min_score": 0.6}, over={"frames": 2})
    assert not eng.evaluate(classified(0, 0.0, "smoke", 0.9))
    assert eng.evaluate(classified(1, 0.1, "smoke", 0.9))
    eng = engine(over={"frames": 2})
    results: list[FrameResult] = [frame(0, 0.0, [detection()], source="a"), frame(0, 0.0, [detection()], source="b"),
                                  frame(1, 0.1, [detection()], source="a")]
    assert [bool(eng.evaluate(r)) for r in results] == [False, False, True]


def test_hit_carries_its_evidence() -> None:
    eng = engine(when={"label": "person"}, over={"frames": 3})
    hits = [h for i in range(3) for h in eng.evaluate(frame(i, 100 + i / FPS, [detection("person", 0.91)]))]
    assert len(hits) == 1
    h = hits[0]
    assert (h.matched, h.considered, h.since_ts, h.result.index) == (3, 3, 100.0, 2)
    assert h.items[0].label == "person" and h.items[0].score == 0.91


def test_disabled_rules_do_nothing() -> None:
    assert run(engine(enabled=False), "xxxx") == []
