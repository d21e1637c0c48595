"""The run session under faults: updates that cannot start change nothing, misfit models never activate,
a failed pipeline is restarted (or reported), and every state says what runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ConfigError, EdgeInferError, ModelError
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.modelpkg.verify import verify_package
from edgeinfer.core.session import RunSession
from edgeinfer.core.types import FrameResult

from .diskfull import SmallDisk, unavailable_reason
from .packages import edited_package, missing_output, wrong_dtype, wrong_strides


def until(pred: Any, timeout: float = 20.0) -> bool:
    """Poll a condition another thread makes true, with a deadline."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if pred():
            return True
        tick.wait(0.01)
    return bool(pred())


def frames(session: RunSession) -> int:
    return int(session.stats().get("frames", 0))


def still_running_unchanged(session: RunSession, before: EdgeInferConfig, model_version: str) -> None:
    assert session.config is before
    st = session.status()
    assert st["state"] == "running" and st["running"], st
    assert st["model"]["version"] == model_version
    n = frames(session)
    assert until(lambda: frames(session) > n + 3), "the old pipeline stopped inferring"


@pytest.fixture
def session(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> Any:
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True})
    s = RunSession(cfg, restart_backoff_s=(0.05, 0.2))
    s.start()
    assert until(lambda: frames(s) > 3)
    yield s
    s.stop(0)


@pytest.mark.parametrize("patch, words", [
    ({"state_dir": "FILE/state", "telemetry": {"transport": "stdout"}}, "state_dir"),
    ({"output": {"dir": "FILE/out"}}, "output.dir"),
    ({"telemetry": {"transport": "mqtts://127.0.0.1:8883?ca=/no/such/ca.pem"}}, "ca"),
])
def test_update_that_cannot_start_leaves_the_pipeline_running(session: RunSession, tmp_path: Path,
                                                              patch: dict[str, Any], words: str) -> None:
    regular = tmp_path / "file"
    regular.write_text("not a folder")
    for section in patch.values():
        if isinstance(section, dict):
            for k, v in section.items():
                section[k] = v.replace("FILE", str(regular)) if isinstance(v, str) else v
    if isinstance(patch.get("state_dir"), str):
        patch["state_dir"] = patch["state_dir"].replace("FILE", str(regular))
    before = session.config
    with pytest.raises(EdgeInferError, match=words):
        session.apply_patch(patch)
    still_running_unchanged(session, before, "1.0.0")
    assert not (tmp_path / "file").is_dir()


@pytest.mark.parametrize("edit, words", [(wrong_strides, "decoder"), (missing_output, "no_such_output"),
                                         (wrong_dtype, "inference")])
def test_misfit_model_is_never_activated(session: RunSession, demo_pkgs: tuple[Path, Path], tmp_path: Path,
                                         edit: Any, words: str) -> None:
    bad = edited_package(demo_pkgs[0], tmp_path / "bad", edit)
    report = verify_package(load_package(bad, verify=False))  # `edgeinfer model verify` runs the same gate
    assert not report.ok and words in (report.first_failure() or "")
    before = session.config
    with pytest.raises(ModelError, match=words):
        session.reload_model(str(bad))
    still_running_unchanged(session, before, "1.0.0")
    with pytest.raises(ModelError, match=words):
        session.apply_patch({"model": {"path": str(bad)}})
    still_running_unchanged(session, before, "1.0.0")


def test_model_and_bad_source_together_is_not_half_applied(session: RunSession, demo_pkgs: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    other = edited_package(demo_pkgs[0], tmp_path / "v2", lambda m: m.update(version="2.0.0"))
    before = session.config
    with pytest.raises(EdgeInferError, match="does not exist"):
        session.apply_patch({"model": {"path": str(other)}, "source": {"uri": str(tmp_path / "no-such.avi")}})
    still_running_unchanged(session, before, "1.0.0")
    session.apply_patch({"model": {"path": str(other)}})  # the same model alone goes in, between frames
    assert until(lambda: session.stats()["model"]["version"] == "2.0.0")
    assert session.status()["model"]["version"] == "2.0.0" and session.config.model.path == str(other)


def test_reload_with_an_empty_path_is_refused(session: RunSession) -> None:
    before = session.config
    for path in ("", "   "):
        with pytest.raises(ConfigError, match="empty model path"):
            session.reload_model(path)
    still_running_unchanged(session, before, "1.0.0")


class Flaky:
    """A sink that raises on chosen calls: a stage failing mid-run."""

    def __init__(self, fail_on: set[int]) -> None:
        self.calls, self.fail_on = 0, fail_on

    def start(self, ctx: Any) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"sink broke at call {self.calls}")

    def close(self, summary: dict[str, Any]) -> None:
        pass


def run_failing(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], fail_on: set[int], calls: int,
                **cfg: Any) -> Flaky:
    """A looping run whose sink fails on ``fail_on``, stopped once ``calls`` frames reached the sink."""
    flaky = Flaky(fail_on)
    config = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True},
                             **cfg)
    s = RunSession(config, extra_sinks=[flaky], restart_backoff_s=(0.05, 0.2))
    s.start()
    try:
        assert until(lambda: flaky.calls > calls)
    finally:
        s.stop(5)
    return flaky


def test_a_failed_pipeline_over_a_looping_source_is_restarted(demo_pkgs: tuple[Path, Path],
                                                              demo_media: tuple[Path, Path]) -> None:
    flaky = Flaky({5, 6})  # fails, restarts, fails again at once, restarts after a longer wait, then runs
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True})
    s = RunSession(cfg, extra_sinks=[flaky], restart_backoff_s=(0.05, 0.2))
    s.start()
    try:
        assert until(lambda: flaky.calls > 30)
        st = s.status()
        assert st["state"] == "running" and "sink broke at call 6" in (st["last_error"] or "")
        assert s._runner is not None and s._runner.restarts == 2
    finally:
        s.stop(0)


def test_a_failed_finite_run_ends_in_error_with_the_reason(demo_pkgs: tuple[Path, Path],
                                                           demo_media: tuple[Path, Path]) -> None:
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1])})
    s = RunSession(cfg, extra_sinks=[Flaky({3})])
    s.start()
    try:
        assert s.wait(20)
        state, reason = s.state()
        assert state == "error" and "sink broke at call 3" in (reason or "")
        assert not s.status()["running"]
    finally:
        s.stop(0)


def test_a_finite_source_finishes(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path]) -> None:
    s = RunSession(EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[0])}))
    s.start()
    try:
        assert s.wait(20)
        assert s.state() == ("finished", None) and frames(s) == 5
    finally:
        s.stop(0)


def test_start_that_fails_leaves_nothing_running_and_says_why(tmp_path: Path, demo_media: tuple[Path, Path],
                                                              demo_pkgs: tuple[Path, Path]) -> None:
    bad = edited_package(demo_pkgs[0], tmp_path / "bad", wrong_strides)
    s = RunSession(EdgeInferConfig(model={"path": str(bad)}, source={"uri": str(demo_media[0])}))
    with pytest.raises(ModelError, match="decoder"):
        s.start()
    state, reason = s.state()
    assert state == "error" and "decoder" in (reason or "") and not s.status()["running"]
    assert threading.active_count() < 50 and not any(t.name == "edgeinfer-run" for t in threading.enumerate())


def test_a_restart_appends_to_the_results_of_the_same_run(demo_pkgs: tuple[Path, Path],
                                                          demo_media: tuple[Path, Path], tmp_path: Path) -> None:
    flaky = run_failing(demo_pkgs, demo_media, {10}, 25, output={"dir": str(tmp_path / "out"), "annotate": False})
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    # the 9 frames before the failure are still there: the restarted pipeline appended after them
    assert len(lines) >= flaky.calls - 1 - 2


class SlowSink(Flaky):
    """A sink that takes 50 ms a frame (a slow disk or network share): the queues in front of it fill."""

    def on_result(self, result: FrameResult) -> None:
        super().on_result(result)
        threading.Event().wait(0.05)  # the sink's own slowness, not synchronisation


class BreaksAfter:
    """A source whose reader raises after ``n`` frames."""

    live = False
    uri = "breaks-after"
    dropped = bad = 0

    def __init__(self, images: list[Any], n: int) -> None:
        self.images, self.n = images, n

    def iterate(self, cancel: threading.Event | None = None) -> Any:
        for i in range(10_000):
            if i == self.n:
                raise OSError("camera driver fell over")
            yield self.images[i % len(self.images)]

    def close(self) -> None:
        pass


def test_a_stage_error_with_a_slow_sink_cannot_hang_the_run(demo_pkgs: tuple[Path, Path],
                                                            demo_media: tuple[Path, Path]) -> None:
    from edgeinfer.core.config import PipelineConfig
    from edgeinfer.core.model import load_model
    from edgeinfer.core.pipeline import Pipeline
    from edgeinfer.core.sources import open_source

    frames_in = list(open_source(str(demo_media[0])))
    model = load_model(load_package(demo_pkgs[0]))
    pipe = Pipeline(model, BreaksAfter(frames_in, 12), [SlowSink(set())],  # type: ignore[arg-type]
                    PipelineConfig(queue_size=1))
    done = threading.Event()
    box: list[BaseException] = []

    def run() -> None:
        try:
            pipe.run()
        except BaseException as exc:
            box.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(10), "run() hung after a stage error behind a slow sink"
    assert box and "camera driver fell over" in str(box[0])
    model.close()


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_a_disk_full_at_start_infers_now_and_attaches_telemetry_when_space_returns(
        demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeinfer.core.session as session_mod

    monkeypatch.setattr(session_mod, "TELEMETRY_RETRY_S", 0.2)
    events = tmp_path / "events.jsonl"
    with SmallDisk(tmp_path / "disk", 256 * 1024) as disk:
        disk.fill()
        cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[1]), "loop": True},
                              state_dir=str(disk.path / "state"),
                              telemetry={"transport": f"file:{events}", "mode": "results"})
        s = RunSession(cfg)
        s.start()  # no outbox can be created on this disk: inference must start anyway
        try:
            assert until(lambda: frames(s) > 5)
            st = s.status()
            assert st["state"] == "running" and any("telemetry off" in d for d in st["degraded"]), st
            assert s.telemetry is None
            disk.free()
            assert until(lambda: s.telemetry is not None), "telemetry never attached after space returned"
            assert until(lambda: events.exists() and '"type":"result"' in events.read_text())
            assert not any("telemetry off" in d for d in s.status()["degraded"])
        finally:
            s.stop(5)


def test_health_telemetry_says_what_the_run_is_doing(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    import json

    events = tmp_path / "events.jsonl"
    run_failing(demo_pkgs, demo_media, {5}, 10, telemetry={"transport": f"file:{events}"})
    health = [e for e in map(json.loads, events.read_text().splitlines()) if e["type"] == "health"]
    states = [h["run"]["state"] for h in health]
    assert states[0] == "starting" and states[1] == "running" and "restarting" in states, states
    failed = next(h for h in health if h["run"]["state"] == "restarting")
    assert "sink broke at call 5" in failed["run"]["reason"]
