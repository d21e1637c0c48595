"""The health gate in the real IoT Edge module: a twin that switches to a model which loads but finds nothing
is rolled back on the device within the probation window; the twin's reported properties and a health event
on the module's output say so; a restart with the same twin runs the model before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.azure.conftest import StartModule
from tests.azure.hub import FakeHub
from tests.azure.test_module_runtime import config_state, desired_for
from tests.core.variants import blind_model

PROBATION = {"window_s": 1, "min_frames": 10, "min_label_results": 5, "max_latency_ratio": 50}


def faces_seen(hub: FakeHub) -> int:
    return sum(len(o.json().get("detections") or []) for o in list(hub.outputs) if o.props.get("type") == "result")


def test_a_model_that_finds_nothing_is_rolled_back_and_the_twin_says_so(
        edge_module: StartModule, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], tmp_path: Path) -> None:
    desired = desired_for(demo_pkgs[0], demo_media[1], probation=PROBATION)
    desired["source"]["fps"] = 20
    state = tmp_path / "state"
    m = edge_module(desired, state_dir=state)
    m.wait_ready()
    m.hub.wait_for(lambda h: faces_seen(h) >= 8, 60, "a baseline of faces from the running model")

    blind = blind_model(demo_pkgs[0], tmp_path / "blind")
    v = m.hub.patch_desired({"model": {"path": str(blind)}})
    config_state(m.hub, v, "applied")
    reported = config_state(m.hub, v, "rolled_back")
    assert reported["model"]["version"] == "1.0.0" and reported["state"] == "running"
    rb = reported["rollback"]
    assert (rb["from"], rb["to"]) == ("2.0.0", "1.0.0") and rb["reason"].startswith("'face': 0.00 per frame"), rb
    assert reported["config"]["error"].startswith("model 2.0.0 rolled back to 1.0.0: 'face'")
    assert reported.get("probation") is None  # a null deletes the key in the twin

    def told(h: FakeHub) -> list[dict[str, Any]]:
        return [o.json()["run"]["rollback"] for o in list(h.outputs)
                if o.props.get("type") == "health" and (o.json().get("run") or {}).get("rollback")]

    assert m.hub.wait_for(told, 30, "a health event carrying the rollback")[0]["from"] == "2.0.0"
    assert m.stop() == 0

    # the same twin after a restart: the rolled-back model is refused, the last good configuration runs
    again = edge_module({**desired, "model": {"path": str(blind)}}, state_dir=state, version=v)
    reported = again.wait_ready()
    assert reported["model"]["version"] == "1.0.0" and reported["state"] == "running"
    assert reported["config"]["status"] == "rejected"
    assert "was rolled back on this device" in reported["config"]["error"]
    assert again.stop() == 0
