"""Shadow A/B: a candidate model beside the active one on a budgeted share of frames, its agreement measured
on the device (core/shadow.py, shadow_runner.py), carried in telemetry, and promotion by configuration."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ModelError
from edgeinfer.core.session import RunSession
from edgeinfer.core.shadow import Agreement, match
from edgeinfer.core.types import Classification, Detection, TaskOutput

from .test_service import Seen
from .variants import blind_model, same_model


def det(label: str, x: float, score: float = 0.9) -> Detection:
    return Detection(label, 0, score, (x, 0.0, x + 10.0, 10.0))


def test_matching_is_one_to_one_by_label_and_iou() -> None:
    active = [det("face", 0), det("face", 100), det("cat", 200)]
    candidate = [det("face", 1, 0.8), det("face", 2), det("dog", 200)]
    pairs = match(active, candidate, 0.5)
    assert [(a.box[0], c.box[0]) for a, c in pairs] == [(0, 1)], "one face each; a dog is not a cat"
    tally = Agreement()
    tally.add(TaskOutput(detections=active), TaskOutput(detections=candidate), 0.5, 2.0)
    doc = tally.to_dict()
    assert doc["labels"]["face"] == {"active": 2, "candidate": 2, "matched": 1, "precision": 0.5, "recall": 0.5,
                                     "score_delta": -0.1}
    assert doc["agreement"] == round(2 * 1 / 6, 4)


def test_agreement_of_equal_and_empty_outputs_and_classes() -> None:
    same = Agreement()
    same.add(TaskOutput(detections=[det("face", 0)]), TaskOutput(detections=[det("face", 0)]), 0.5, 1.0)
    same.add(TaskOutput(), TaskOutput(), 0.5, 1.0)
    assert same.agreement == 1.0
    classes = Agreement()
    for a, c in (("red", "red"), ("red", "blue")):
        classes.add(TaskOutput(classes=[Classification(a, 0, 0.9)]), TaskOutput(classes=[Classification(c, 0, 0.9)]),
                    0.5, 1.0)
    assert classes.agreement == 0.5


def run_with_shadow(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], tmp_path: Path,
                    candidate: Path, **shadow: object) -> tuple[RunSession, Seen]:
    seen = Seen()
    events = tmp_path / "events.jsonl"
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True},
                          shadow={"model": str(candidate), "max_cost": 1.0, **shadow},
                          probation={"window_s": 1, "min_frames": 5, "max_latency_ratio": 50},
                          telemetry={"transport": f"file:{events}", "mode": "summary", "window_s": 1})
    svc = RunSession(cfg, extra_sinks=[seen])
    svc.start()
    return svc, seen


def wait_compared(svc: RunSession, seen: Seen, frames: int) -> dict:
    for _ in range(20):
        shadow = svc.status()["shadow"]
        if shadow["frames"] >= frames:
            return shadow
        assert seen.wait_more(10)
    raise AssertionError(f"the shadow compared too few frames: {svc.status()['shadow']}")


def test_the_same_model_agrees_fully_and_a_blind_one_does_not(demo_pkgs, demo_media, tmp_path: Path) -> None:
    same = same_model(demo_pkgs[0], tmp_path / "same")
    svc, seen = run_with_shadow(demo_pkgs, demo_media, tmp_path / "a", same)
    try:
        shadow = wait_compared(svc, seen, 30)
        assert shadow["model_version"] == "2.0.0" and shadow["agreement"] == 1.0 and shadow["error"] is None
        assert shadow["labels"]["face"]["recall"] == 1.0 and shadow["labels"]["face"]["score_delta"] == 0.0
        assert svc.status()["model"]["version"] == "1.0.0", "a shadow is measured, never acted on"
    finally:
        svc.stop(10)
    summaries = [json.loads(x) for x in (tmp_path / "a" / "events.jsonl").read_text().splitlines()]
    windows = [e["shadow"] for e in summaries if e["type"] == "summary" and "shadow" in e]
    assert windows and sum(w["frames"] for w in windows) >= 30 and all(w["agreement"] == 1.0 for w in windows
                                                                        if w["frames"])

    blind = blind_model(demo_pkgs[0], tmp_path / "blind")
    svc, seen = run_with_shadow(demo_pkgs, demo_media, tmp_path / "b", blind)
    try:
        shadow = wait_compared(svc, seen, 30)
        face = shadow["labels"]["face"]
        assert face["candidate"] == 0 and face["recall"] == 0.0 and face["active"] > 0
        assert shadow["agreement"] == 0.0
    finally:
        svc.stop(0)


def test_the_budget_keeps_the_candidate_to_its_share(demo_pkgs, demo_media, tmp_path: Path) -> None:
    same = same_model(demo_pkgs[0], tmp_path / "same")
    svc, seen = run_with_shadow(demo_pkgs, demo_media, tmp_path, same, max_cost=0.05)
    try:
        assert seen.wait_more(100)
        shadow = svc.status()["shadow"]
        # resting 19x its inference time after each one, the candidate takes a small share of the frames
        assert shadow["offered"] >= 100 and shadow["skipped"] > shadow["frames"] > 0, shadow
    finally:
        svc.stop(0)


def test_promotion_by_configuration_switches_through_the_health_gate(demo_pkgs, demo_media, tmp_path: Path) -> None:
    same = same_model(demo_pkgs[0], tmp_path / "same")
    svc, _ = run_with_shadow(demo_pkgs, demo_media, tmp_path, same, promote_at=0.99, min_frames=10)
    kept = threading.Event()
    svc.add_probation_listener(lambda outcome, _: outcome == "kept" and kept.set())
    try:
        assert kept.wait(90), svc.status()
        status = svc.status()
        assert status["model"]["version"] == "2.0.0" and status["shadow"] is None
        assert status["shadow_promoted"]["version"] == "2.0.0" and status["shadow_promoted"]["agreement"] >= 0.99
        assert svc.config.model.path == str(same) and svc.config.shadow.model is None
    finally:
        svc.stop(0)


def test_a_shadow_that_cannot_load_refuses_the_configuration(demo_pkgs, demo_media, tmp_path: Path) -> None:
    seen = Seen()
    svc = RunSession(EdgeInferConfig(model={"path": str(demo_pkgs[0])},
                                     source={"uri": str(demo_media[1]), "loop": True}), extra_sinks=[seen])
    svc.start()
    try:
        assert seen.wait_more(2)
        with pytest.raises(ModelError, match="shadow model not loaded"):
            svc.apply_patch({"shadow": {"model": str(tmp_path / "missing")}})
        assert svc.config.shadow.model is None and svc.status()["shadow"] is None
        assert seen.wait_more(2), "the run goes on"
    finally:
        svc.stop(0)
