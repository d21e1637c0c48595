"""Deployments with the real azure-iot-hub client against a local HTTPS IoT Hub that checks the SAS
signature, method, path, api-version and body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edgeinfer.cloud.azure.deploy import Target, connect, deploy, deployment_id
from edgeinfer.cloud.azure.errors import DeployError
from edgeinfer.cloud.azure.manifest import ManifestOptions, build_manifest
from edgeinfer.cloud.azure.status import deployment_status, device_status
from tests.azure.iothub_rest import API_VERSION, FakeIotHubRest
from tests.telemetry.pki import Pki

pytest.importorskip("azure.iot.hub", reason="azure-iot-hub not installed (pip install 'edgeinfer[azure]')")

SHA = "0123456789abcdef" * 4
MODEL = {"name": "faces", "version": "3", "uri": "https://models.example.com/faces-3.zip", "sha256": SHA}
CRED = {"name": "myacr", "address": "myacr.azurecr.io", "username": "myacr", "password_env": "ACR_PASSWORD"}


@pytest.fixture
def iothub(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIotHubRest]:
    hub = FakeIotHubRest(pki, devices={"cam-01", "cam-02"}).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", hub.connection_string())
    monkeypatch.setenv("ACR_PASSWORD", "s3cret-from-env")
    yield hub
    hub.stop()


@pytest.fixture
def manifest() -> dict[str, Any]:
    return build_manifest(ManifestOptions(registry="myacr.azurecr.io", credentials=[CRED], model=MODEL))


def test_at_scale_deployment(iothub: FakeIotHubRest, manifest: dict[str, Any]) -> None:
    target = Target(target_condition="tags.site='lab'", priority=20, labels={"site": "lab"})
    result = deploy(connect(), manifest, target)
    assert result == {"kind": "at-scale", "id": deployment_id(target, manifest), "created": True}
    call = iothub.calls[-1]
    assert (call.method, call.path, call.query, call.status) == (
        "PUT", f"/configurations/{result['id']}", {"api-version": [API_VERSION]}, 201)
    body = call.body
    assert body["id"] == result["id"] and result["id"].startswith("edgeinfer-base-0-1-0-")
    assert body["targetCondition"] == "tags.site='lab'" and body["priority"] == 20
    assert body["labels"] == {"app": "edgeinfer", "edgeinferVersion": "0.1.0", "site": "lab"}
    content = body["content"]["modulesContent"]
    creds = content["$edgeAgent"]["properties.desired"]["runtime"]["settings"]["registryCredentials"]
    assert creds["myacr"]["password"] == "s3cret-from-env", "the reference is resolved only on the way out"
    assert manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"][
        "registryCredentials"]["myacr"]["password"] == "$ACR_PASSWORD"
    assert content["edgeinfer"]["properties.desired"]["model"]["sha256"] == SHA
    assert "edgeinferRejectedCount" in body["metrics"]["queries"]
    # content is immutable: the same deployment again is a no-op, another priority is another id
    assert deploy(connect(), manifest, target)["created"] is False
    assert iothub.calls[-1].status == 409
    other = deploy(connect(), manifest, Target(target_condition="tags.site='lab'", priority=30))
    assert other["created"] is True and other["id"] != result["id"]


def test_layered_deployment(iothub: FakeIotHubRest, manifest: dict[str, Any]) -> None:
    result = deploy(connect(), manifest, Target(target_condition="tags.camera=true", layered=True))
    assert result["kind"] == "layered" and "-layer-" in result["id"]
    content = iothub.calls[-1].body["content"]["modulesContent"]
    assert set(content["$edgeAgent"]) == {"properties.desired.modules.edgeinfer",
                                          "properties.desired.runtime.settings.registryCredentials.myacr"}
    assert set(content["$edgeHub"]) == {"properties.desired.routes.edgeinferAlerts",
                                        "properties.desired.routes.edgeinferTelemetry"}
    assert content["edgeinfer"]["properties.desired"]["model"]["name"] == "faces"


def test_one_device(iothub: FakeIotHubRest, manifest: dict[str, Any]) -> None:
    assert deploy(connect(), manifest, Target(device_id="cam-01")) == {
        "kind": "device", "device_id": "cam-01", "created": True}
    call = iothub.calls[-1]
    assert (call.method, call.path, call.status) == ("POST", "/devices/cam-01/applyConfigurationContent", 204)
    assert call.query == {"api-version": [API_VERSION]}
    assert call.body["modulesContent"]["$edgeHub"]["properties.desired"]["schemaVersion"] == "1.2"
    with pytest.raises(DeployError, match="HTTP 404"):
        deploy(connect(), manifest, Target(device_id="cam-99"))


def test_missing_secret_sends_nothing(iothub: FakeIotHubRest, manifest: dict[str, Any],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACR_PASSWORD")
    with pytest.raises(DeployError, match=r"\$ACR_PASSWORD, which is not set"):
        deploy(connect(), manifest, Target(device_id="cam-01"))
    assert iothub.calls == []


def test_wrong_key_and_missing_connection_string(iothub: FakeIotHubRest, manifest: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", iothub.connection_string(key="d3Jvbmcta2V5"))
    with pytest.raises(DeployError, match=r"HTTP 401.*check the connection string"):
        deploy(connect(), manifest, Target(device_id="cam-01"))
    monkeypatch.delenv("IOTHUB_CONNECTION_STRING")
    with pytest.raises(DeployError, match="IOTHUB_CONNECTION_STRING is not set"):
        connect()


def test_target_needs_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="device id or a target condition"):
        Target()
    with pytest.raises(ValueError, match="not both"):
        Target(device_id="cam-01", target_condition="tags.x=1")


def _agent(deployment: str, desired_version: int, code: int | None, reported_version: int | None) -> dict[str, Any]:
    reported: dict[str, Any] = {"lastDesiredVersion": reported_version}
    if code is not None:
        reported["lastDesiredStatus"] = {"code": code, "description": "" if code == 200 else "image pull failed"}
    return {"moduleId": "$edgeAgent", "configurations": {deployment: {"status": "Applied"}},
            "properties": {"desired": {"$version": desired_version}, "reported": reported}}


def _module(status: str, error: str | None = None) -> dict[str, Any]:
    return {"moduleId": "edgeinfer", "properties": {"desired": {}, "reported": {
        "state": "running", "config": {"desired_version": 2, "status": status, "error": error},
        "model": {"name": "faces", "version": "3"}}}}


def test_status_per_device(iothub: FakeIotHubRest, manifest: dict[str, Any]) -> None:
    dep = deploy(connect(), manifest, Target(target_condition="tags.site='lab'"))["id"]
    iothub.device_twins.update({d: {"tags": {"site": "lab"}} for d in ("cam-01", "cam-02")})  # IoT Hub targets by tag
    iothub.module_twins.update({
        ("cam-01", "$edgeAgent"): {**_agent(dep, 4, 200, 4), "deviceId": "cam-01"},
        ("cam-01", "edgeinfer"): {**_module("applied"), "deviceId": "cam-01"},
        ("cam-02", "$edgeAgent"): {**_agent(dep, 4, 400, 4), "deviceId": "cam-02"},
        ("cam-03", "$edgeAgent"): {**_agent(dep, 4, 200, 4), "deviceId": "cam-03"},
        ("cam-03", "edgeinfer"): {**_module("rejected", "pipeline.mode: bad"), "deviceId": "cam-03"},
        ("cam-04", "$edgeAgent"): {**_agent(dep, 5, 200, 4), "deviceId": "cam-04"},
    })
    metrics, devices = deployment_status(connect(), dep)
    assert metrics["targetedCount"] == 2
    by_id = {d.device_id: d for d in devices}
    assert by_id["cam-01"].state == "applied" and by_id["cam-01"].model == "faces 3"
    assert by_id["cam-02"].state == "failed" and "edgeAgent 400: image pull failed" in str(by_id["cam-02"].reason)
    assert by_id["cam-03"].state == "failed" and "pipeline.mode" in str(by_id["cam-03"].reason)
    assert by_id["cam-04"].state == "pending" and "not applied desired v5" in str(by_id["cam-04"].reason)
    queries = [c.body["query"] for c in iothub.calls if c.path == "/devices/query"]
    assert any(f"configurations.[[{dep}]].status = 'Applied'" in q for q in queries)
    assert device_status(connect(), "cam-01").state == "applied"
    with pytest.raises(DeployError, match="HTTP 404"):
        deployment_status(connect(), "edgeinfer-base-nope")
