"""RunSession: the control surface the Greengrass component and IoT Edge module share."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ConfigError, ModelError, SourceError
from edgeinfer.core.session import RunSession
from edgeinfer.core.sinks.base import RunContext
from edgeinfer.core.types import FrameResult

from .colour_model import make_colour_model


class Seen:
    """A sink that counts results as they come, so a test waits for frames instead of polling for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.frames = 0

    def start(self, ctx: RunContext) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        with self._cond:
            self.frames += 1
            self._cond.notify_all()

    def close(self, summary: dict[str, Any]) -> None:
        pass

    def wait_more(self, n: int, timeout_s: float = 20.0) -> bool:
        """Block until ``n`` more results than now have come (False after ``timeout_s``)."""
        with self._cond:
            target = self.frames + n
            return self._cond.wait_for(lambda: self.frames >= target, timeout_s)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def service(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], seen: Seen) -> Iterator[RunSession]:
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True})
    svc = RunSession(cfg, extra_sinks=[seen])
    svc.start()
    assert seen.wait_more(4)
    yield svc
    svc.stop(0)


def test_status_reports_what_runs(service: RunSession) -> None:
    st = service.status()
    assert st["running"] and st["model"]["name"] == "blazeface-full-range" and len(st["model"]["sha256"]) == 64
    assert st["backend"]["backend"] == "onnxruntime" and st["backend"]["active"] == ["CPUExecutionProvider"]


def test_bad_patch_is_rejected_and_running_config_stays(service: RunSession, seen: Seen) -> None:
    before = service.config
    for patch, words in [({"bogus": 1}, "bogus: unknown key"),
                         ({"model": {"score_threshold": 3}}, "model.score_threshold"),
                         ({"pipeline": {"queue_size": "big"}}, "pipeline.queue_size")]:
        with pytest.raises(ConfigError, match=words):
            service.apply_patch(patch)
        assert service.config is before
    assert seen.wait_more(1)  # still running


def test_threshold_applies_live(service: RunSession, seen: Seen) -> None:
    service.set_threshold(0.99)
    assert service.config.model.score_threshold == 0.99
    assert seen.wait_more(10)
    before = service.stats()["detections"].get("face", 0)
    assert seen.wait_more(50)  # a whole loop: 15 faces at 0.5
    assert service.stats()["detections"].get("face", 0) <= before + 2  # 0.99: (almost) no face passes any more


def test_corrupt_model_is_never_activated(service: RunSession, demo_pkgs: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(demo_pkgs[0], bad)
    data = bytearray((bad / "model.onnx").read_bytes())
    data[5000] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        service.reload_model(str(bad))
    assert service.status()["model"]["name"] == "blazeface-full-range"
    assert service.config.model.path == str(demo_pkgs[0])
    assert "sha256 mismatch" in (service.status()["last_error"] or "")


def test_swap_to_another_model_while_running(service: RunSession, demo_pkgs: tuple[Path, Path], seen: Seen) -> None:
    info = service.reload_model(str(demo_pkgs[1]))
    assert info["name"] == "blazeface-full-range-tflite"
    assert service.status()["backend"]["backend"] == "litert"
    assert seen.wait_more(3)
    assert service.stats()["model"]["name"] == "blazeface-full-range-tflite"


def test_snapshot_is_an_annotated_jpeg(service: RunSession) -> None:
    jpg = service.snapshot()
    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (512, 768, 3)


def test_source_change_restarts_and_bad_source_keeps_running(service: RunSession,
                                                              demo_media: tuple[Path, Path]) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        service.apply_patch({"source": {"uri": "/no/such/clip.avi"}})
    assert service.running and service.config.source.uri == str(demo_media[1])
    service.apply_patch({"source": {"uri": str(demo_media[0]), "loop": False}})
    assert service.wait(20)  # a folder of five images ends
    assert service.stats()["frames"] == 5


def test_task_change_to_another_kind_of_model(tmp_path: Path, demo_media: tuple[Path, Path]) -> None:
    pkg = make_colour_model(tmp_path)
    svc = RunSession(EdgeInferConfig(model={"path": str(pkg)}, source={"uri": str(demo_media[0])}))
    svc.start()
    try:
        assert svc.wait(20)
        assert svc.stats()["frames"] == 5 and svc.stats()["model"]["task"] == "classification"
    finally:
        svc.stop(0)


def test_telemetry_follows_a_hot_model_swap(tmp_path: Path, demo_media: tuple[Path, Path]) -> None:
    import json

    old_pkg = make_colour_model(tmp_path / "old")
    new_pkg = make_colour_model(tmp_path / "new", version="2.0.0")
    events = tmp_path / "events.jsonl"
    cfg = EdgeInferConfig(model={"path": str(old_pkg)}, source={"uri": str(demo_media[1]), "loop": True},
                          telemetry={"transport": f"file:{events}", "mode": "results"})
    seen = Seen()
    svc = RunSession(cfg, extra_sinks=[seen])
    svc.start()
    try:
        assert seen.wait_more(4)
        svc.reload_model(str(new_pkg))
        assert seen.wait_more(6)
        svc.apply_patch({"pipeline": {"queue_size": 8}})  # a restart keeps the same telemetry service
        assert seen.wait_more(4)
    finally:
        assert svc.stop(10) == 0
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    results = [e for e in lines if e["type"] == "result"]
    versions = [e["model_version"] for e in results]
    cut = versions.index("2.0.0")
    assert set(versions[:cut]) == {"1.0.0"} and set(versions[cut:]) == {"2.0.0"}  # exact, no mix after the swap
    seqs = [e["seq"] for e in results]
    assert seqs == list(range(1, len(seqs) + 1))  # one gap-free stream across the swap and the restart
    assert any(e["type"] == "health" and e["model_version"] == "2.0.0" for e in lines)
