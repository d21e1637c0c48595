"""Captures to blob: the deployment manifest gains the Azure Blob Storage on IoT Edge module (its volume, its twin
tiering edgeinfer's container to the cloud) and edgeinfer's key variable, every secret only as a $VARIABLE
reference resolved at deploy time; validated against the pinned SchemaStore schemas and the project's checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgeinfer.cli import app
from edgeinfer.cloud.azure.blobmodule import BlobModuleOptions, local_store
from edgeinfer.cloud.azure.deploy import resolve_secrets
from edgeinfer.cloud.azure.errors import DeployError, ManifestError
from edgeinfer.cloud.azure.manifest import ManifestOptions, build_manifest
from edgeinfer.cloud.azure.validate import check_manifest
from edgeinfer.core.captures.config import BlobStore

from .test_manifest import MODEL, agent, options_of

BLOB = "azureblobstorageoniotedge"


def with_blob(**config: Any) -> dict[str, Any]:
    return build_manifest(ManifestOptions(registry="myacr.azurecr.io", model=MODEL, config=config,
                                          blob=BlobModuleOptions(account_name="edgeinferlocal")))


def test_captures_to_blob_add_the_module_its_twin_and_edgeinfers_key_reference(schema_folder: Path) -> None:
    doc = with_blob()
    report = check_manifest(doc, schema_dir=schema_folder)
    assert report.ok, report.problems
    assert any("SchemaStore" in c for c in report.checked)
    modules = agent(doc)["modules"]
    blob = modules[BLOB]
    assert blob["settings"]["image"] == "mcr.microsoft.com/azure-blob-storage:latest"
    assert options_of(blob["settings"]) == {"HostConfig": {"Binds": ["edgeinfer-blob:/blobroot"]}}, \
        "a volume for the blobs; the endpoint only on the IoT Edge network"
    assert blob["env"] == {"LOCAL_STORAGE_ACCOUNT_NAME": {"value": "edgeinferlocal"},
                           "LOCAL_STORAGE_ACCOUNT_KEY": {"value": "$EDGEINFER_BLOB_KEY"}}
    assert blob["startupOrder"] < modules["edgeinfer"]["startupOrder"]
    assert modules["edgeinfer"]["env"]["EDGEINFER_BLOB_KEY"] == {"value": "$EDGEINFER_BLOB_KEY"}
    assert BlobStore(account_name="edgeinferlocal").key_env == "EDGEINFER_BLOB_KEY", "what edgeinfer reads"
    content = doc["modulesContent"]
    assert content[BLOB]["properties.desired"] == {
        "deviceToCloudUploadProperties": {
            "uploadOn": True, "uploadOrder": "OldestFirst",
            "cloudStorageConnectionString": "$EDGEINFER_BLOB_CLOUD_CONNECTION",
            "storageContainersForUpload": {"edgeinfer-captures": {"target": "edgeinfer-captures"}},
            "deleteAfterUpload": True},
        "deviceAutoDeleteProperties": {"deleteOn": True, "deleteAfterMinutes": 10080, "retainWhileUploading": True}}
    twin = content["edgeinfer"]["properties.desired"]
    assert twin["captures"]["enabled"] is True and "store" not in twin["captures"]
    assert "EDGEINFER_BLOB" not in json.dumps(twin) and "edgeinferlocal" not in json.dumps(twin), \
        "neither the key nor where captures go is in edgeinfer's twin"
    assert local_store(BlobModuleOptions(account_name="edgeinferlocal")) == {
        "type": "azureblob", "account_name": "edgeinferlocal", "container": "edgeinfer-captures"}
    BlobStore.model_validate(local_store(BlobModuleOptions(account_name="edgeinferlocal")))


def test_without_captures_to_blob_there_is_no_blob_module() -> None:
    doc = build_manifest(ManifestOptions(registry="myacr.azurecr.io", model=MODEL))
    assert set(agent(doc)["modules"]) == {"edgeinfer"} and BLOB not in doc["modulesContent"]
    assert "EDGEINFER_BLOB_KEY" not in agent(doc)["modules"]["edgeinfer"]["env"]
    assert doc["modulesContent"]["edgeinfer"]["properties.desired"]["captures"]["enabled"] is False


def test_a_published_host_port_and_a_renamed_module_are_carried(schema_folder: Path) -> None:
    opts = BlobModuleOptions(account_name="edgeinferlocal", module_name="blobstore", host_port=11002)
    doc = build_manifest(ManifestOptions(registry="myacr.azurecr.io", model=MODEL, blob=opts))
    assert check_manifest(doc, schema_dir=schema_folder).ok
    host = options_of(agent(doc)["modules"]["blobstore"]["settings"])["HostConfig"]
    assert host["PortBindings"] == {"11002/tcp": [{"HostPort": "11002"}]}
    assert local_store(opts)["endpoint"] == "http://blobstore:11002/{account}"


def test_inline_blob_secrets_are_caught(schema_folder: Path) -> None:
    doc = with_blob()
    agent(doc)["modules"][BLOB]["env"]["LOCAL_STORAGE_ACCOUNT_KEY"]["value"] = "bG9jYWwta2V5LWluLWNsZWFy"
    upload = doc["modulesContent"][BLOB]["properties.desired"]["deviceToCloudUploadProperties"]
    upload["cloudStorageConnectionString"] = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k"
    problems = check_manifest(doc, schema_dir=schema_folder).problems
    assert [p for p in problems if "inline secret" in p] == [
        f"modules.{BLOB}.env.LOCAL_STORAGE_ACCOUNT_KEY is an inline secret; manifests carry only a $VARIABLE "
        "reference, resolved at deploy time",
        f"{BLOB}.deviceToCloudUploadProperties.cloudStorageConnectionString is an inline secret; manifests carry "
        "only a $VARIABLE reference, resolved at deploy time"]


def test_a_config_that_contradicts_captures_to_blob_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"captures\.enabled: false"):
        with_blob(captures={"enabled": False})
    with pytest.raises(ManifestError, match="device-local setting"):
        with_blob(captures={"store": {"type": "azureblob", "account_name": "other"}})
    with pytest.raises(ManifestError, match="already has a module"):
        build_manifest(ManifestOptions(model=MODEL, blob=BlobModuleOptions(account_name="abc",
                                                                             module_name="edgeinfer")))


def test_deploy_resolves_the_blob_secrets_from_the_environment_only() -> None:
    doc = with_blob()
    env = {"EDGEINFER_BLOB_KEY": "a2V5", "EDGEINFER_BLOB_CLOUD_CONNECTION": "BlobEndpoint=https://x;SharedAccess"
           "Signature=sv=1"}
    resolved = resolve_secrets(doc, env)
    modules = agent(resolved)["modules"]
    assert modules[BLOB]["env"]["LOCAL_STORAGE_ACCOUNT_KEY"]["value"] == "a2V5"
    assert modules["edgeinfer"]["env"]["EDGEINFER_BLOB_KEY"]["value"] == "a2V5"
    upload = resolved["modulesContent"][BLOB]["properties.desired"]["deviceToCloudUploadProperties"]
    assert upload["cloudStorageConnectionString"] == env["EDGEINFER_BLOB_CLOUD_CONNECTION"]
    assert agent(doc)["modules"][BLOB]["env"]["LOCAL_STORAGE_ACCOUNT_KEY"]["value"] == "$EDGEINFER_BLOB_KEY", \
        "the manifest itself is left as it was"
    with pytest.raises(DeployError, match=r"refers to \$EDGEINFER_BLOB_CLOUD_CONNECTION, which is not set"):
        resolve_secrets(doc, {"EDGEINFER_BLOB_KEY": "a2V5"})


def test_cli_manifest_with_captures_blob(tmp_path: Path, schema_folder: Path) -> None:
    out = tmp_path / "deployment.json"
    result = CliRunner().invoke(app, ["azure", "manifest", "--out", str(out), "--registry", "myacr.azurecr.io",
                                      "--captures-blob", "edgeinferlocal", "--blob-cloud-container", "training",
                                      "--schemas", str(schema_folder)])
    assert result.exit_code == 0, result.output
    assert "SchemaStore" in result.output and '"account_name": "edgeinferlocal"' in result.output
    doc = json.loads(out.read_text())
    upload = doc["modulesContent"][BLOB]["properties.desired"]["deviceToCloudUploadProperties"]
    assert upload["storageContainersForUpload"] == {"edgeinfer-captures": {"target": "training"}}
    bad = CliRunner().invoke(app, ["azure", "manifest", "--out", str(tmp_path / "x.json"),
                                   "--captures-blob", "Not_A_Name"])
    assert isinstance(bad.exception, ManifestError) and "blob.account_name" in str(bad.exception)
    assert not (tmp_path / "x.json").exists()
