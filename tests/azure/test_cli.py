"""`edgeinfer azure ...` (the azure_app sub-app): manifest, validate, deploy, status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from edgeinfer.cli.azure import azure_app
from edgeinfer.cloud.azure.errors import DeployError, ManifestError, RegistryError
from edgeinfer.core.errors import ConfigError
from tests.azure.iothub_rest import FakeIotHubRest
from tests.telemetry.pki import Pki

SHA = "ab" * 32
MODEL_ARGS = ["--model-name", "faces", "--model-version", "3", "--model-uri", "https://models.example.com/f.zip",
              "--model-sha256", SHA]


def run(*args: str) -> Result:
    return CliRunner().invoke(azure_app, list(args), catch_exceptions=True)


@pytest.fixture
def iothub(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIotHubRest]:
    pytest.importorskip("azure.iot.hub", reason="azure-iot-hub not installed (pip install 'edgeinfer[azure]')")
    hub = FakeIotHubRest(pki, devices={"cam-01"}).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", hub.connection_string())
    monkeypatch.setenv("CONTAINER_REGISTRY_PASSWORD", "from-env")
    yield hub
    hub.stop()


def write_manifest(tmp_path: Path, *extra: str) -> Path:
    cfg = tmp_path / "edgeinfer.yaml"
    cfg.write_text("source:\n  uri: rtsp://cam-1/stream\ntelemetry:\n  mode: results\n")
    out = tmp_path / "deployment.json"
    result = run("manifest", "--out", str(out), "--config", str(cfg), "--registry", "myacr.azurecr.io",
                 "--registry-username", "myacr", "--platform", "amd64.cuda", "--device", "/dev/video0",
                 "--env", "LOG_FORMAT=json", *MODEL_ARGS, *extra)
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def test_manifest_then_validate(tmp_path: Path, schema_folder: Path) -> None:
    schema_args = ["--schemas", str(schema_folder)]
    out = write_manifest(tmp_path, *schema_args)
    doc: dict[str, Any] = json.loads(out.read_text())
    desired = doc["modulesContent"]["edgeinfer"]["properties.desired"]
    assert desired["source"]["uri"] == "rtsp://cam-1/stream" and desired["model"]["sha256"] == SHA
    agent = doc["modulesContent"]["$edgeAgent"]["properties.desired"]
    assert agent["runtime"]["settings"]["registryCredentials"]["myacr"]["password"] == "$CONTAINER_REGISTRY_PASSWORD"
    assert "DeviceRequests" in agent["modules"]["edgeinfer"]["settings"]["createOptions"]
    result = run("validate", str(out), *schema_args)
    assert result.exit_code == 0 and "ok" in result.output
    assert "SchemaStore" in result.output


def test_validate_lists_problems(tmp_path: Path) -> None:
    out = write_manifest(tmp_path)
    doc = json.loads(out.read_text())
    doc["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["edgeinfer"]["settings"][
        "createOptions"] = "{not json"
    doc["modulesContent"]["edgeinfer"]["properties.desired"]["colour"] = "red"
    out.write_text(json.dumps(doc))
    result = run("validate", str(out))
    assert isinstance(result.exception, ManifestError)
    assert "createOptions is not valid JSON" in result.output and "colour: unknown key" in result.output


def test_bad_options_give_one_line_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "m.json")
    result = run("manifest", "--out", out, "--platform", "riscv")
    assert isinstance(result.exception, ManifestError) and "platform" in str(result.exception)
    result = run("manifest", "--out", out, "--model-name", "faces", "--model-uri", "ftp://x")
    assert isinstance(result.exception, ManifestError) and "uri" in str(result.exception)
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("pipeline:\n  queue_size: many\n")
    result = run("manifest", "--out", out, "--config", str(bad_cfg))
    assert isinstance(result.exception, ConfigError) and "pipeline.queue_size" in str(result.exception)
    assert not Path(out).exists(), "nothing is written when the manifest is invalid"


def test_registry_model_needs_azure_ai_ml_or_a_name(tmp_path: Path) -> None:
    out = str(tmp_path / "m.json")
    result = run("manifest", "--out", out, "--aml-registry", "contoso-models")
    assert isinstance(result.exception, ManifestError) and "--model-name" in str(result.exception)
    try:
        import azure.ai.ml  # noqa: F401
    except ImportError:
        result = run("manifest", "--out", out, "--aml-registry", "contoso-models", "--model-name", "faces")
        assert isinstance(result.exception, RegistryError) and "edgeinfer[azureml]" in str(result.exception)


def test_deploy_and_status(tmp_path: Path, iothub: FakeIotHubRest) -> None:
    out = write_manifest(tmp_path)
    result = run("deploy", str(out), "--device", "cam-01")
    assert result.exit_code == 0 and "applied to device cam-01" in result.output
    body = iothub.calls[-1].body
    creds = body["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]["registryCredentials"]
    assert creds["myacr"]["password"] == "from-env"
    result = run("deploy", str(out), "--target-condition", "tags.site='lab'", "--priority", "5",
                 "--label", "site=lab")
    assert result.exit_code == 0 and "created at-scale deployment" in result.output, result.output
    dep = iothub.calls[-1].path.rsplit("/", 1)[1]
    assert "unchanged" in run("deploy", str(out), "--target-condition", "tags.site='lab'", "--priority", "5",
                              "--label", "site=lab").output
    iothub.module_twins[("cam-01", "$edgeAgent")] = {
        "deviceId": "cam-01", "configurations": {dep: {"status": "Applied"}},
        "properties": {"desired": {"$version": 2}, "reported": {"lastDesiredVersion": 2,
                                                                "lastDesiredStatus": {"code": 200}}}}
    iothub.module_twins[("cam-01", "edgeinfer")] = {
        "deviceId": "cam-01", "properties": {"desired": {}, "reported": {
            "state": "running", "config": {"status": "applied"}, "model": {"name": "faces", "version": "3"}}}}
    result = run("status", "--deployment", dep, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["devices"] == [
        {"device_id": "cam-01", "state": "applied", "model": "faces 3", "reason": None}]
    result = run("status", "--device", "cam-01")
    assert result.exit_code == 0 and "applied" in result.output


def test_deploy_errors(tmp_path: Path, iothub: FakeIotHubRest, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_manifest(tmp_path)
    result = run("deploy", str(out))
    assert isinstance(result.exception, ManifestError) and "device id or a target condition" in str(result.exception)
    monkeypatch.delenv("CONTAINER_REGISTRY_PASSWORD")
    result = run("deploy", str(out), "--device", "cam-01")
    assert isinstance(result.exception, DeployError) and "CONTAINER_REGISTRY_PASSWORD" in str(result.exception)
    assert iothub.calls == []
