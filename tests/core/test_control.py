"""The one command set (core/control.py) on a real RunSession: what the Greengrass commands and the IoT Edge
direct methods both answer, status codes included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.control import Controls
from edgeinfer.core.errors import EdgeInferError
from edgeinfer.core.jpeg import fit_jpeg
from edgeinfer.core.session import RunSession

from .test_service import Seen


@pytest.fixture
def session(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> Iterator[RunSession]:
    seen = Seen()
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True},
                          remote={"model_dirs": [str(demo_pkgs[0].parent)]})
    svc = RunSession(cfg, extra_sinks=[seen])
    svc.start()
    assert seen.wait_more(2)
    yield svc
    svc.stop(0)


def test_each_command_answers_with_what_runs(session: RunSession, demo_pkgs: tuple[Path, Path]) -> None:
    changes: list[str] = []
    controls = Controls(lambda: session, 128 * 1024, on_change=lambda: changes.append("x"))
    status = controls.run("status")
    assert status.ok and status.result is not None
    assert status.result["running"] is True and status.result["model"]["name"] == "blazeface-full-range"
    assert status.result["stats"]["frames"] >= 2 and status.result["busy"] in (True, False)
    assert controls.run("set_threshold", {"value": 0.7}).result == {"score_threshold": 0.7}
    assert controls.run("set_threshold", 0.6).result == {"score_threshold": 0.6}, "a bare number is accepted"
    assert session.config.model.score_threshold == 0.6
    snap = controls.run("snapshot", {"max_bytes": 20_000})
    assert snap.ok and snap.jpeg is not None and snap.result is not None
    assert len(snap.jpeg) == snap.result["bytes"] <= 20_000 and snap.jpeg[:2] == b"\xff\xd8"
    reloaded = controls.run("reload", {"path": str(demo_pkgs[1])})
    assert reloaded.ok and reloaded.result == {"model": session.status()["model"]}
    assert reloaded.result["model"]["name"] == "blazeface-full-range-tflite"
    assert changes == ["x"] * 3, "a threshold or a model change refreshes what is reported"


@pytest.mark.parametrize(("command", "args", "status", "words"), [
    ("format_disk", None, 404, "unknown command 'format_disk'"),
    ("set_threshold", {"value": 1.5}, 400, "from 0 to 1"),
    ("set_threshold", {"value": True}, 400, "from 0 to 1"),
    ("set_threshold", "high", 400, "must be a JSON object"),
    ("set_threshold", None, 400, "value"),
    ("reload", {"path": 42}, 400, "path"),
    ("reload", {"path": "/etc"}, 400, "outside remote.model_dirs"),
    ("reload", {"path": "/tmp", "force": True}, 400, "force"),
    ("snapshot", {"max_bytes": 10}, 400, "max_bytes"),
    ("status", {"verbose": 1}, 400, "send no arguments"),
])
def test_bad_requests_are_refused_and_nothing_changes(session: RunSession, command: str, args: object,
                                                      status: int, words: str) -> None:
    before = session.status()["model"], session.config.model.score_threshold
    outcome = Controls(lambda: session, 128 * 1024).run(command, args)
    assert outcome.status == status and outcome.error is not None and words in outcome.error, outcome
    assert (session.status()["model"], session.config.model.score_threshold) == before


def test_a_rejected_model_is_422_and_nothing_running_is_503(session: RunSession, tmp_path: Path,
                                                             demo_pkgs: tuple[Path, Path]) -> None:
    outcome = Controls(lambda: session, 128 * 1024).run("reload", {"path": str(demo_pkgs[0].parent / "missing")})
    assert outcome.status == 422 and "does not exist" in (outcome.error or "")
    idle = Controls(lambda: None, 128 * 1024, not_running=lambda: "no model configured").run("status")
    assert idle.status == 503 and idle.error == "no model is running: no model configured"


def test_fit_jpeg_keeps_a_small_image_and_shrinks_a_large_one() -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)  # noise: a JPEG that compresses badly
    ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    big = buf.tobytes()
    same, w, h = fit_jpeg(big, len(big))
    assert same is big and (w, h) == (1280, 720)
    small, w, h = fit_jpeg(big, 100_000)
    assert len(small) <= 100_000 and w < 1280 and cv2.imdecode(np.frombuffer(small, np.uint8), 1).shape[:2] == (h, w)
    with pytest.raises(EdgeInferError, match="does not fit 1000 bytes"):
        fit_jpeg(big, 1000)
