"""The health gate: a model switch is on probation and a model that loads but behaves badly is rolled back
on the device, without the cloud; a good one is kept (core/probation.py, gate.py, session.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ModelError
from edgeinfer.core.probation import Figures, FrameFigures, Probation, ProbationConfig, judge
from edgeinfer.core.rollbacks import RolledBack
from edgeinfer.core.session import RunSession

from .test_service import Seen
from .variants import blind_model, same_model

FAST = {"window_s": 1, "min_frames": 10, "min_label_results": 5}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def frames(n: int, infer_ms: float, faces: int, score: float = 0.9) -> list[FrameFigures]:
    return [FrameFigures(infer_ms, tuple(("face", score) for _ in range(faces))) for _ in range(n)]


@pytest.mark.parametrize(("after", "failures", "words"), [
    (frames(50, 4.0, 1), 0, None),
    (frames(50, 13.0, 1), 0, "inference p95 13.0 ms is 3.2x the previous model's 4.0 ms (at most 3x)"),
    (frames(50, 4.0, 0), 0, "'face': 0.00 per frame against 1.00 with the previous model (at least 0.25x)"),
    (frames(50, 4.0, 1, score=0.5), 0, "'face': mean score 0.50 against 0.90 with the previous model"),
    (frames(50, 4.0, 1), 3, "3 pipeline failures during probation (at most 2)"),
])
def test_judge_names_the_first_bound_breached(after: list[FrameFigures], failures: int, words: str | None) -> None:
    verdict = judge(ProbationConfig(), Figures.over(frames(100, 4.0, 1)), Figures.over(after), failures)
    assert verdict == words if words is None else verdict is not None and verdict.startswith(words)


def test_a_label_seen_too_rarely_before_is_not_judged() -> None:
    before = Figures.over(frames(100, 4.0, 0) + frames(3, 4.0, 1))  # 3 faces < min_label_results
    assert judge(ProbationConfig(), before, Figures.over(frames(50, 4.0, 0)), 0) is None


def test_probation_waits_for_its_window_and_frames_then_decides_once() -> None:
    clock = Clock()
    p = Probation(ProbationConfig(window_s=10, min_frames=5), Figures.over(frames(20, 4.0, 1)), "2", "1", clock)
    for _ in range(5):
        assert p.record(frames(1, 4.0, 0)[0]) is None  # bad already, but the window is not over
    clock.t = 10.0
    verdict = p.record(frames(1, 4.0, 0)[0])
    assert verdict is not None and not verdict.passed and "'face'" in verdict.reason
    quiet = Probation(ProbationConfig(min_frames=5, max_wait_s=60), Figures.over(frames(20, 4.0, 1)), "2", "1", clock)
    clock.t += 61
    kept = quiet.record(frames(1, 4.0, 1)[0])
    assert kept is not None and kept.passed and kept.reason.startswith("kept unjudged: 1 results")


def test_failures_alone_roll_back_before_any_result() -> None:
    p = Probation(ProbationConfig(max_failures=1), Figures.over(frames(20, 4.0, 1)), "2", "1", Clock())
    assert p.failed_once() is None
    verdict = p.failed_once()
    assert verdict is not None and not verdict.passed and verdict.reason.startswith("2 pipeline failures")


class Health:
    """Health events as the telemetry file transport writes them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def runs(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        events = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
        return [e["run"] for e in events if e["type"] == "health" and "run" in e]


@pytest.fixture
def running(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
            tmp_path: Path) -> Iterator[tuple[RunSession, Seen, Health, dict[str, threading.Event]]]:
    seen = Seen()
    events = tmp_path / "events.jsonl"
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True},
                          probation=FAST, state_dir=str(tmp_path / "state"),
                          telemetry={"transport": f"file:{events}", "mode": "summary", "health_interval_s": 60})
    svc = RunSession(cfg, extra_sinks=[seen])
    settled = {"kept": threading.Event(), "rolled_back": threading.Event()}
    svc.add_probation_listener(lambda outcome, _: settled[outcome].set())
    svc.start()
    assert seen.wait_more(40), "a baseline of the demo model's own results"
    assert svc.stats()["detections"].get("face", 0) >= FAST["min_label_results"]
    yield svc, seen, Health(events), settled
    svc.stop(0)


def test_a_model_that_finds_nothing_is_rolled_back_within_the_window(
        running: tuple[RunSession, Seen, Health, dict[str, threading.Event]], demo_pkgs: tuple[Path, Path],
        tmp_path: Path) -> None:
    svc, seen, health, settled = running
    blind = blind_model(demo_pkgs[0], tmp_path / "blind")
    svc.apply_patch({"model": {"path": str(blind)}})
    status = svc.status()
    assert status["model"]["version"] == "2.0.0" and status["probation"]["previous_version"] == "1.0.0"
    assert settled["rolled_back"].wait(60), "the health gate rolls back without anyone asking"
    status = svc.status()
    assert status["model"]["version"] == "1.0.0" and status["state"] == "running" and status["probation"] is None
    rb = status["rollback"]
    assert (rb["from"], rb["to"]) == ("2.0.0", "1.0.0") and rb["reason"].startswith("'face': 0.00 per frame"), rb
    assert svc.config.model.path == str(demo_pkgs[0]), "what runs is what the config says"
    assert "rolled back to 1.0.0" in (status["last_error"] or "")
    faces = svc.stats()["detections"].get("face", 0)
    assert seen.wait_more(90)  # three loops of the clip (faces are in part of it)
    assert svc.stats()["detections"].get("face", 0) > faces, "the previous model detects again"
    # the same model is not activated again
    assert RolledBack(tmp_path / "state").find(_sha(blind)) is not None
    with pytest.raises(ModelError, match=r"model blazeface-full-range 2\.0\.0 was rolled back on this device"):
        svc.apply_patch({"model": {"path": str(blind)}})
    assert svc.status()["model"]["version"] == "1.0.0"
    svc.stop(10)  # delivers what is in the outbox: the cloud heard of the rollback in a health event
    told = [r["rollback"] for r in health.runs() if r.get("rollback")]
    assert told and told[0]["from"] == "2.0.0" and told[0]["reason"] == rb["reason"]


def test_a_model_that_behaves_is_kept_and_becomes_the_baseline(
        running: tuple[RunSession, Seen, Health, dict[str, threading.Event]], demo_pkgs: tuple[Path, Path],
        tmp_path: Path) -> None:
    svc, _, health, settled = running
    first = svc.status()["model"]
    same = same_model(demo_pkgs[0], tmp_path / "same")
    # the latency bound is judge()'s to test; on this shared 2-core machine a p95 swings several-fold
    svc.apply_patch({"model": {"path": str(same)}, "probation": {"max_latency_ratio": 50}})
    assert svc.status()["probation"]["model_version"] == "2.0.0"
    assert settled["kept"].wait(60), svc.status()
    status = svc.status()
    assert status["model"]["version"] == "2.0.0" and status["probation"] is None and status["rollback"] is None
    assert status["model"]["sha256"] != first["sha256"] and not settled["rolled_back"].is_set()
    # the health event at the new model's first result says it is on probation; the one at the verdict, not
    svc.stop(10)  # delivers what is in the outbox
    on_probation = [r for r in health.runs() if (r.get("probation") or {}).get("model_version") == "2.0.0"]
    assert on_probation and on_probation[0]["probation"]["previous_version"] == "1.0.0"
    assert health.runs()[-1].get("probation") is None


def _sha(pkg: Path) -> str:
    import hashlib

    return hashlib.sha256((pkg / "model.onnx").read_bytes()).hexdigest()
