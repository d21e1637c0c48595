"""Azure rollouts with the real azure-iot-hub client against the local HTTPS IoT Hub, which computes each
layered deployment's system metrics (target condition over device tags) and custom metrics (the queries
edgeinfer defines, over the module twins' reported properties), with simulated device outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from edgeinfer.cloud.azure.deploy import connect
from edgeinfer.cloud.azure.manifest import ManifestOptions, build_manifest
from edgeinfer.cloud.azure.rollout import IotHubRollout, device_page
from edgeinfer.cloud.rollout import engine
from edgeinfer.cloud.rollout.plan import parse_plan
from tests.azure.iothub_rest import FakeIotHubRest
from tests.telemetry.pki import Pki

pytest.importorskip("azure.iot.hub", reason="azure-iot-hub not installed (pip install 'edgeinfer[azure]')")

NEW, OLD = "3", "2"
MODEL = {"name": "faces", "version": NEW, "uri": "https://models.example.com/faces-3.zip", "sha256": "ab" * 32}


class Clock:
    def __init__(self) -> None:
        self.t = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.t

    def epoch(self) -> float:
        return self.t.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def rings(n_canary: int, n_fleet: int) -> dict[str, str]:
    return {**{f"cam-c{i}": "canary" for i in range(n_canary)}, **{f"cam-f{i}": "fleet" for i in range(n_fleet)}}


@pytest.fixture
def iothub(pki: Pki, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[FakeIotHubRest]:
    hub = FakeIotHubRest(pki, clock=clock.epoch).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", hub.connection_string())
    yield hub
    hub.stop()


def tag(hub: FakeIotHubRest, devices: dict[str, str]) -> None:
    hub.devices |= set(devices)
    for d, ring in devices.items():
        hub.device_twins[d] = {"tags": {"ring": ring, "site": "lab"}}


def outcome(hub: FakeIotHubRest, device: str, config_id: str, what: str, at: dt.datetime) -> None:
    """What edgeAgent and the edgeinfer module report for one device after the ring's layer reached it."""
    applied = {config_id: {"status": "Applied"}}
    code = 400 if what == "agent_failed" else 200
    hub.module_twins[(device, "$edgeAgent")] = {"deviceId": device, "configurations": applied, "properties": {
        "desired": {"$version": 7}, "reported": {"lastDesiredVersion": 7, "lastDesiredStatus": {
            "code": code, "description": "image pull failed" if code != 200 else ""}}}}
    reported: dict[str, Any] = {"model": {"name": "faces", "version": NEW}, "config": {"status": "applied"}}
    if what == "rolled_back":
        reported["model"]["version"] = OLD
        reported["rollback"] = {"from": NEW, "to": OLD, "reason": "no detections for 300 s (previous: 4.1/min)",
                                "at": at.isoformat().replace("+00:00", "Z")}
    if what == "rejected":  # the module keeps what it ran
        reported["model"]["version"], reported["config"] = OLD, {"status": "rejected", "error": "sha256 mismatch"}
    if what == "agent_failed":  # edgeAgent never started the new module: the old one runs on
        reported["model"]["version"] = OLD
    hub.module_twins[(device, "edgeinfer")] = {"deviceId": device, "configurations": applied,
                                               "properties": {"reported": reported}}


def make_plan(**health: Any):
    return parse_plan({"name": "faces-v3", "model": "faces", "model_version": NEW,
                       "rings": [{"name": "canary", "target": "canary", "soak_s": 1800},
                                 {"name": "fleet", "target": "fleet", "soak_s": 0}],
                       "health": {"max_failed_pct": 20, "max_rolled_back_pct": 20, "min_reported": 3, **health},
                       "azure": {"priority": 120, "base_condition": "tags.site='lab'"}})


@pytest.fixture
def driver(iothub: FakeIotHubRest, clock: Clock) -> IotHubRollout:
    return IotHubRollout(connect(), build_manifest(ManifestOptions(model=MODEL)), now=clock)


def test_canary_that_rolls_back_is_withdrawn_and_the_fleet_never_gets_it(iothub, driver, clock) -> None:
    tag(iothub, rings(5, 4))
    plan = make_plan()
    st = engine.advance(driver, plan, clock, start=True)
    assert st.actions == ["deployed ring canary (edgeinfer-faces-v3-canary)"]
    body = next(c.body for c in iothub.calls if c.method == "PUT")
    assert (body["priority"], body["targetCondition"]) == (120, "tags.site='lab' AND tags.ring='canary'")
    assert body["content"]["modulesContent"]["edgeinfer"]["properties.desired"]["model"]["version"] == NEW
    assert st.rings[0].progress.targeted == 5 and st.rings[0].state == "deploying"
    cid = st.rings[0].progress.deployment
    for device, what in {"cam-c0": "ok", "cam-c1": "ok", "cam-c2": "rolled_back", "cam-c3": "rolled_back"}.items():
        outcome(iothub, device, cid, what, clock())
    st = engine.advance(driver, plan, clock)
    assert st.actions == ["aborted ring canary: 2/4 devices rolled the model back (50% > 20%)"]
    canary = st.rings[0]
    assert canary.state == "aborted" and st.outcome == "aborted"
    assert (canary.progress.targeted, canary.progress.succeeded, canary.progress.rolled_back) == (5, 2, 2)
    stored = iothub.configurations[cid]
    assert stored["targetCondition"].endswith("AND tags.edgeinferWithdrawn='faces-v3'"), "the layer is withdrawn"
    assert stored["labels"]["edgeinferAborted"].startswith("2/4 devices rolled the model back")
    clock.t += dt.timedelta(days=1)
    assert engine.advance(driver, plan, clock).actions == []
    assert "edgeinfer-faces-v3-fleet" not in iothub.configurations
    rows, token = device_page(connect(), plan, plan.rings[0], page_size=3)
    more, end = device_page(connect(), plan, plan.rings[0], token=token, page_size=3)
    assert token and end is None and len(rows) + len(more) == 4
    rolled = sorted((r.device, r.rollback.reason) for r in rows + more if r.rollback)
    assert rolled == [("cam-c2", "no detections for 300 s (previous: 4.1/min)")] * 1 + [
        ("cam-c3", "no detections for 300 s (previous: 4.1/min)")]


def test_failures_stop_the_canary(iothub, driver, clock) -> None:
    tag(iothub, rings(5, 4))
    plan = make_plan(max_rolled_back_pct=100)
    cid = engine.advance(driver, plan, clock, start=True).rings[0].progress.deployment
    for device, what in {"cam-c0": "ok", "cam-c1": "agent_failed", "cam-c2": "rejected", "cam-c3": "ok"}.items():
        outcome(iothub, device, cid, what, clock())
    st = engine.advance(driver, plan, clock)
    assert st.rings[0].state == "aborted" and "2/4 devices failed the deployment" in st.rings[0].why
    assert st.rings[0].progress.failed == 2


def test_healthy_canary_soaks_then_widens(iothub, driver, clock) -> None:
    tag(iothub, rings(5, 4))
    plan = make_plan()
    cid = engine.advance(driver, plan, clock, start=True).rings[0].progress.deployment
    for i in range(5):
        outcome(iothub, f"cam-c{i}", cid, "rolled_back" if i == 4 else "ok", clock())  # 1/5: within 20%
    st = engine.advance(driver, plan, clock)
    assert st.actions == [] and st.rings[0].state == "soaking"
    clock.t += dt.timedelta(seconds=1800)
    st = engine.advance(driver, plan, clock)
    assert st.actions == ["deployed ring fleet (edgeinfer-faces-v3-fleet)"]
    assert iothub.configurations["edgeinfer-faces-v3-fleet"]["targetCondition"] == \
        "tags.site='lab' AND tags.ring='fleet'"
    for i in range(4):
        outcome(iothub, f"cam-f{i}", "edgeinfer-faces-v3-fleet", "ok", clock())
    st = engine.advance(driver, plan, clock)
    assert st.outcome == "done"
    assert [(v.progress.targeted, v.progress.succeeded, v.progress.rolled_back) for v in st.rings] == [
        (5, 4, 1), (4, 4, 0)]


def test_status_of_a_10000_device_fleet_is_one_call_per_ring(iothub, driver, clock) -> None:
    tag(iothub, rings(100, 9900))
    plan = make_plan(min_reported_pct=90)
    cid = engine.advance(driver, plan, clock, start=True).rings[0].progress.deployment
    for i in range(100):
        outcome(iothub, f"cam-c{i}", cid, "ok", clock())
    clock.t += dt.timedelta(seconds=1800)
    engine.advance(driver, plan, clock)
    for i in range(9900):
        outcome(iothub, f"cam-f{i}", "edgeinfer-faces-v3-fleet", "rolled_back" if i % 1000 == 0 else "ok", clock())
    before = len(iothub.calls)
    st = engine.status(driver, plan, clock)
    assert len(iothub.calls) - before == len(plan.rings) == st.calls
    assert [(v.progress.targeted, v.progress.succeeded, v.progress.rolled_back) for v in st.rings] == [
        (100, 100, 0), (9900, 9890, 10)]


def test_cli_rollout(iothub, clock, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from edgeinfer.cli.azure import azure_app
    from edgeinfer.cloud.azure.manifest import write_manifest

    tag(iothub, rings(3, 2))
    plan_file, manifest = tmp_path / "plan.yaml", tmp_path / "manifest.json"
    plan_file.write_text(make_plan().model_dump_json())
    write_manifest(build_manifest(ManifestOptions(model=MODEL)), manifest)
    runner = CliRunner()
    res = runner.invoke(azure_app, ["rollout", "start", str(plan_file), "--manifest", str(manifest), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rings"][0]["targeted"] == 3
    for i in range(3):
        outcome(iothub, f"cam-c{i}", "edgeinfer-faces-v3-canary", "rejected" if i == 0 else "ok", clock())
    res = runner.invoke(azure_app, ["rollout", "status", str(plan_file), "--devices", "canary"])
    assert res.exit_code == 0 and "failing" in res.output and "cam-c0" in res.output, res.output
    res = runner.invoke(azure_app, ["rollout", "advance", str(plan_file), "--manifest", str(manifest)])
    assert res.exit_code == 1 and "aborted ring canary" in res.output
    res = runner.invoke(azure_app, ["rollout", "advance", str(plan_file)])
    assert res.exit_code != 0 and "--manifest is needed" in str(res.exception)
