"""Thread tuning: leave a core to the other stages only when they would contend with inference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeinfer.core import tuning
from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package


@pytest.mark.parametrize("pre, infer, cores, want", [
    (1.2, 3.0, 2, 1),      # the demo model on 2 cores: preprocessing is 40% of an inference
    (3.0, 66.0, 2, None),  # a heavy model: keep every thread for inference
    (1.2, 3.0, 4, 3),
    (1.2, 3.0, 16, None),  # a big host has cores to spare
    (1.2, 3.0, 1, None),
])
def test_recommended_threads(pre: float, infer: float, cores: int, want: int | None) -> None:
    assert tuning.recommended_threads(pre, infer, cores) == want


def threads_of(model) -> int:
    return model.backend.session.get_session_options().intra_op_num_threads


def test_small_model_on_two_cores_gets_one_thread(demo_pkgs: tuple[Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "usable_cores", lambda: 2)
    monkeypatch.setattr(tuning, "recommended_threads", lambda pre, inf, cores: 1 if pre > 0 and inf > 0 else None)
    model = load_model(load_package(demo_pkgs[0]))
    tuned = tuning.tune_threads(model, EdgeInferConfig())
    assert tuned is not model and threads_of(tuned) == 1 and model.backend.session is None  # old one closed
    tuned.close()


def test_low_power_lets_inference_threads_sleep_and_survives_tuning(demo_pkgs: tuple[Path, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "usable_cores", lambda: 2)
    monkeypatch.setattr(tuning, "recommended_threads", lambda pre, inf, cores: 1)
    cfg = EdgeInferConfig(backend={"low_power": True})
    model = tuning.tune_threads(load_model(load_package(demo_pkgs[0]), cfg.backend), cfg)
    opts = model.backend.session.get_session_options()
    assert opts.get_session_config_entry("session.force_spinning_stop") == "1" and opts.intra_op_num_threads == 1
    model.close()
    default = load_model(load_package(demo_pkgs[0]))
    with pytest.raises(RuntimeError):  # not set: onnxruntime spins between runs, as it does by default
        default.backend.session.get_session_options().get_session_config_entry("session.force_spinning_stop")
    default.close()


def test_explicit_threads_and_sequential_mode_are_left_alone(demo_pkgs: tuple[Path, Path]) -> None:
    for cfg in (EdgeInferConfig(backend={"threads": 2}), EdgeInferConfig(pipeline={"mode": "sequential"})):
        model = load_model(load_package(demo_pkgs[0]), cfg.backend)
        assert tuning.tune_threads(model, cfg) is model
        model.close()


def test_a_restart_opens_the_runtime_once_with_the_threads_measured_before(
        demo_pkgs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from edgeinfer.core.runner import load_configured

    monkeypatch.setattr(tuning, "usable_cores", lambda: 2)
    monkeypatch.setattr(tuning, "recommended_threads", lambda pre, inf, cores: 1)
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, state_dir=str(tmp_path))
    caplog.set_level("INFO", logger="edgeinfer.core.tuning")
    first, _ = load_configured(cfg)
    assert threads_of(first) == 1 and "preprocessing takes" in caplog.text  # measured, then reopened
    first.close()
    (entry,) = json.loads((tmp_path / tuning.TUNING_FILE).read_text()).values()
    assert entry["threads"] == 1
    caplog.clear()
    monkeypatch.setattr(tuning, "recommended_threads", lambda pre, inf, cores: pytest.fail("measured again"))
    again, _ = load_configured(cfg)
    assert threads_of(again) == 1 and "measured at an earlier start" in caplog.text
    again.close()


@pytest.mark.parametrize("change", [
    {"at": 0},  # a day old and more: measured again
    {"threads": 7},  # more threads than this host has cores
    {"threads": True},
    None,  # not JSON at all
])
def test_a_stale_or_broken_memory_is_measured_again(demo_pkgs: tuple[Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, change: dict | None) -> None:
    from edgeinfer.core.runner import load_configured

    monkeypatch.setattr(tuning, "usable_cores", lambda: 2)
    monkeypatch.setattr(tuning, "recommended_threads", lambda pre, inf, cores: 1)
    cfg = EdgeInferConfig(model={"path": str(demo_pkgs[0])}, state_dir=str(tmp_path))
    load_configured(cfg)[0].close()
    package = load_package(demo_pkgs[0])
    assert tuning.remembered_threads(package, cfg, tmp_path) == 1
    path = tmp_path / tuning.TUNING_FILE
    if change is None:
        path.write_text("not json")
    else:
        path.write_text(json.dumps({k: {**v, **change} for k, v in json.loads(path.read_text()).items()}))
    assert tuning.remembered_threads(package, cfg, tmp_path) is None
    assert tuning.remembered_options(package, cfg, tmp_path) == (cfg, False)
