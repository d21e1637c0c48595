"""Deployment manifests: built from the template and the config schema, validated against the SchemaStore
schemas (when present) and the project's own checks; bad input gives a clear error."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.azure.limits import CREATE_OPTIONS_CHUNK, TWIN_PROPERTIES_MAX_BYTES
from edgeinfer.cloud.azure import schemas
from edgeinfer.cloud.azure.create_options import decode
from edgeinfer.cloud.azure.errors import ManifestError
from edgeinfer.cloud.azure.manifest import DEFAULT_TEMPLATE, ManifestOptions, build_manifest
from edgeinfer.cloud.azure.validate import check_manifest
from edgeinfer.core.errors import ConfigError

SHA = "0123456789abcdef" * 4
MODEL = {"name": "faces", "version": "3", "uri": "https://models.example.com/faces-3.zip", "sha256": SHA}


def agent(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["modulesContent"]["$edgeAgent"]["properties.desired"]


def module_settings(doc: dict[str, Any], name: str = "edgeinfer") -> dict[str, Any]:
    return agent(doc)["modules"][name]["settings"]


def options_of(settings: dict[str, Any]) -> dict[str, Any]:
    options, problems = decode(settings, "test")
    assert not problems
    assert options is not None
    return options


@pytest.mark.parametrize("platform", ["amd64", "arm64v8", "amd64.cuda", "arm64v8.l4t"])
def test_generated_manifest_is_valid_for_every_platform(platform: str, schema_folder: Path) -> None:
    doc = build_manifest(ManifestOptions(registry="myacr.azurecr.io", platform=platform, model=MODEL))
    report = check_manifest(doc, schema_dir=schema_folder)
    assert report.ok, report.problems
    assert module_settings(doc)["image"] == f"myacr.azurecr.io/edgeinfer:0.1.0-{platform}"
    host = options_of(module_settings(doc))["HostConfig"]
    assert host["Binds"] == ["edgeinfer-state:/var/lib/edgeinfer"]
    if "." in platform:  # GPU platforms
        assert host["DeviceRequests"] == [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]
    else:
        assert "DeviceRequests" not in host


def test_manifest_structure(schema_folder: Path) -> None:
    doc = build_manifest(ManifestOptions(
        registry="myacr.azurecr.io", devices=["/dev/video0"], env={"LOG_FORMAT": "json"},
        credentials=[{"name": "myacr", "address": "myacr.azurecr.io", "username": "myacr",
                      "password_env": "ACR_PASSWORD"}],
        config={"source": {"uri": "rtsp://cam-1/stream"}, "telemetry": {"mode": "results"}}, model=MODEL))
    content = doc["modulesContent"]
    a = agent(doc)
    assert a["schemaVersion"] == "1.1" and a["runtime"]["type"] == "docker"
    assert a["runtime"]["settings"]["registryCredentials"]["myacr"] == {
        "address": "myacr.azurecr.io", "username": "myacr", "password": "$ACR_PASSWORD"}
    assert "secret" not in json.dumps(doc).lower()
    m = a["modules"]["edgeinfer"]
    assert m["restartPolicy"] == "always" and m["status"] == "running" and m["type"] == "docker"
    assert m["env"]["LOG_FORMAT"] == {"value": "json"}
    assert m["env"]["EDGEINFER_STATE_DIR"] == {"value": "/var/lib/edgeinfer/state"}
    host = options_of(m["settings"])["HostConfig"]
    assert host["Devices"] == [{"PathOnHost": "/dev/video0", "PathInContainer": "/dev/video0",
                                "CgroupPermissions": "rwm"}]
    hub = content["$edgeHub"]["properties.desired"]
    assert hub["routes"]["edgeinferAlerts"] == {
        "route": "FROM /messages/modules/edgeinfer/outputs/alerts INTO $upstream", "priority": 0,
        "timeToLiveSecs": 86400}
    assert hub["routes"]["edgeinferTelemetry"]["priority"] > hub["routes"]["edgeinferAlerts"]["priority"]
    assert hub["storeAndForwardConfiguration"] == {"timeToLiveSecs": 7200}
    desired = content["edgeinfer"]["properties.desired"]
    assert desired["model"] == {"warmup_runs": 2, **MODEL}
    assert desired["source"]["uri"] == "rtsp://cam-1/stream" and desired["telemetry"]["mode"] == "results"
    assert "device_id" not in desired and "null" not in json.dumps(desired), "twin nulls mean delete"
    assert check_manifest(doc, schema_dir=schema_folder).ok


def test_create_options_are_chunked_past_512_characters(schema_folder: Path) -> None:
    binds = [f"/srv/edgeinfer/volume-{i:02d}:/mnt/volume-{i:02d}:ro" for i in range(40)]
    doc = build_manifest(ManifestOptions(create_options={"HostConfig": {"Binds": binds}}, model=MODEL))
    settings = module_settings(doc)
    keys = sorted(k for k in settings if k.startswith("createOptions"))
    assert keys[0] == "createOptions" and keys[1:] == [f"createOptions{i:02d}" for i in range(1, len(keys))]
    assert len(keys) > 2 and all(len(settings[k]) <= CREATE_OPTIONS_CHUNK for k in keys)
    assert options_of(settings)["HostConfig"]["Binds"][1:] == binds
    assert check_manifest(doc, schema_dir=schema_folder).ok


def test_create_options_over_eight_chunks_are_refused() -> None:
    binds = [f"/srv/edgeinfer/a-rather-long-volume-name-{i:03d}:/mnt/v{i:03d}" for i in range(120)]
    with pytest.raises(ManifestError, match="at most 8 x 512"):
        build_manifest(ManifestOptions(create_options={"HostConfig": {"Binds": binds}}))


def test_user_template_with_other_modules(tmp_path: Path, schema_folder: Path) -> None:
    template = json.loads(DEFAULT_TEMPLATE.read_text())
    modules = template["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]
    modules["camproxy"] = {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
                           "settings": {"image": "contoso.azurecr.io/camproxy:2.1",
                                        "createOptions": {"HostConfig": {"NetworkMode": "host"}}}}
    template["modulesContent"]["camproxy"] = {"properties.desired": {"streams": 2}}
    path = tmp_path / "deployment.template.json"
    path.write_text(json.dumps(template))
    doc = build_manifest(ManifestOptions(template=path, module_name="vision", model=MODEL))
    assert agent(doc)["modules"]["camproxy"]["settings"]["createOptions"] == '{"HostConfig":{"NetworkMode":"host"}}'
    assert "vision" in agent(doc)["modules"] and "vision" in doc["modulesContent"]
    assert "FROM /messages/modules/vision/outputs/alerts" in json.dumps(doc)
    report = check_manifest(doc, module_name="vision", schema_dir=schema_folder)
    assert report.ok, report.problems


# -- bad input ---------------------------------------------------------------------------------------
def test_bad_config_is_refused_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"pipeline\.queue_size"):
        build_manifest(ManifestOptions(config={"pipeline": {"queue_size": "four"}}))
    with pytest.raises(ConfigError, match=r"colour: unknown key"):
        build_manifest(ManifestOptions(config={"colour": "red"}))


def test_the_twin_names_the_transport_the_module_uses() -> None:
    doc = build_manifest(ManifestOptions())
    desired = doc["modulesContent"]["edgeinfer"]["properties.desired"]
    assert desired["telemetry"]["transport"] == "iotedge", "the module sends through its outputs: the twin says so"
    with pytest.raises(ManifestError, match="the module sends telemetry through its outputs"):
        build_manifest(ManifestOptions(config={"telemetry": {"transport": "stdout"}}))


def test_bad_model_delivery_is_refused() -> None:
    with pytest.raises(ConfigError, match="sha256"):
        build_manifest(ManifestOptions(config={"model": {**MODEL, "sha256": "abc"}}))
    with pytest.raises(ValueError, match="azureml://"):
        ManifestOptions(model={**MODEL, "uri": "azureml://registries/r/models/faces/versions/3"})


@pytest.mark.parametrize("name", ["edgeHub", "edge.infer", "has space", "x" * 65, ""])
def test_bad_module_names(name: str) -> None:
    with pytest.raises(ValueError, match="module name"):
        ManifestOptions(module_name=name)


def _valid() -> dict[str, Any]:
    return build_manifest(ManifestOptions(registry="myacr.azurecr.io", model=MODEL))


def _problems(doc: dict[str, Any], schema_folder: Path) -> str:
    report = check_manifest(doc, schema_dir=schema_folder)
    assert not report.ok
    with pytest.raises(ManifestError, match="invalid manifest"):
        report.raise_for_problems()
    return "\n".join(report.problems)


def test_invalid_create_options_json_is_caught(schema_folder: Path) -> None:
    doc = _valid()
    module_settings(doc)["createOptions"] = '{"HostConfig": {"Binds": ["a:b"]'
    assert "createOptions is not valid JSON" in _problems(doc, schema_folder)


def test_unchunked_or_gapped_create_options_are_caught(schema_folder: Path) -> None:
    doc = _valid()
    module_settings(doc)["createOptions"] = json.dumps({"HostConfig": {"Binds": ["/x:/y"] * 60}})
    assert "a chunk holds at most 512" in _problems(doc, schema_folder)
    doc = _valid()
    settings = module_settings(doc)
    text = settings.pop("createOptions")
    settings.update({"createOptions": text[:10], "createOptions02": text[10:]})
    assert "not contiguous" in _problems(doc, schema_folder)


def test_inline_registry_password_is_caught(schema_folder: Path) -> None:
    doc = _valid()
    agent(doc)["runtime"]["settings"]["registryCredentials"]["acr"] = {
        "address": "myacr.azurecr.io", "username": "myacr", "password": "hunter2-real-password"}
    assert "inline secret" in _problems(doc, schema_folder)


def test_twin_over_32_kb_is_caught(schema_folder: Path) -> None:
    doc = _valid()
    doc["modulesContent"]["edgeinfer"]["properties.desired"]["source"]["uri"] = "rtsp://" + "x" * 33_000
    assert f"a twin allows {TWIN_PROPERTIES_MAX_BYTES}" in _problems(doc, schema_folder)


def test_module_desired_properties_are_checked_against_the_config_schema(schema_folder: Path) -> None:
    doc = _valid()
    doc["modulesContent"]["edgeinfer"]["properties.desired"]["pipeline"]["mode"] = "turbo"
    assert "pipeline.mode" in _problems(doc, schema_folder)
    doc = _valid()
    doc["modulesContent"]["edgeinfer"]["properties.desired"]["model"]["sha256"] = "not-a-hash"
    assert "model delivery" in _problems(doc, schema_folder)


def test_routes_from_missing_modules_and_placeholders_are_caught(schema_folder: Path) -> None:
    doc = _valid()
    doc["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]["ghost"] = \
        "FROM /messages/modules/ghost/outputs/* INTO $upstream"
    module_settings(doc)["image"] = "${MODULES.edgeinfer}"
    text = _problems(doc, schema_folder)
    assert "module 'ghost'" in text and "${MODULES.edgeinfer}" in text


def test_bad_twin_keys_are_caught(schema_folder: Path) -> None:
    doc = _valid()
    doc["modulesContent"]["edgeinfer"]["properties.desired"]["bad.key"] = 1
    assert "key 'bad.key' is not allowed in a twin" in _problems(doc, schema_folder)


def test_schemastore_schemas_catch_what_they_cover(schema_folder: Path) -> None:
    doc = _valid()
    agent(doc)["modules"]["edgeinfer"]["restartPolicy"] = "sometimes"
    doc2 = copy.deepcopy(_valid())
    doc2["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]["edgeinferAlerts"]["priority"] = 12
    assert schemas.EDGE_AGENT in _problems(doc, schema_folder)
    assert schemas.EDGE_HUB in _problems(doc2, schema_folder)
