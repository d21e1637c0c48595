"""Models from the Azure ML registry: the real azure-ai-ml ``MLClient`` (registry discovery, model version
reads) over an offline transport: azure-core's RequestsTransport whose requests session has a local
adapter standing in for the network. Only the sockets are replaced."""

from __future__ import annotations

from typing import Any

import pytest

from edgeinfer.cloud.azure.errors import RegistryError
from edgeinfer.cloud.azure.manifest import ManifestOptions, build_manifest
from edgeinfer.cloud.azure.registry import ml_client, resolve_model
from edgeinfer.cloud.azure.validate import check_manifest

pytest.importorskip("azure.ai.ml", reason="azure-ai-ml not installed (pip install 'edgeinfer[azureml]')")

from tests.azure.aml_wire import REGISTRY, RegistryWire, StaticCredential, version_body

SHA = "c0ffee" * 10 + "beef"
BLOB = "https://contosoblob.blob.core.windows.net/models/faces/3/faces-3.zip"


@pytest.fixture
def wire() -> RegistryWire:
    w = RegistryWire()
    w.versions[("faces", "3")] = version_body("faces", "3", {"sha256": SHA}, BLOB)
    w.versions[("faces", "4")] = version_body("faces", "4", {"sha256": SHA.replace("c", "d"),
                                                              "download_uri": "https://cdn.example.com/faces-4.zip"},
                                              BLOB.replace("3", "4"))
    w.versions[("untagged", "1")] = version_body("untagged", "1", {}, BLOB)
    w.versions[("internal", "1")] = version_body("internal", "1", {"sha256": SHA},
                                                 f"azureml://registries/{REGISTRY}/models/internal/versions/1")
    return w


@pytest.fixture
def client(wire: RegistryWire) -> Any:
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.mount("https://", wire)
    return ml_client(REGISTRY, credential=StaticCredential(), transport=RequestsTransport(session=session))


def test_registry_version_becomes_the_twin_model(client: Any, wire: RegistryWire, schema_folder: Any) -> None:
    ref = resolve_model(client, "faces", "3")
    assert (ref.name, ref.version, ref.uri, ref.sha256) == ("faces", "3", BLOB, SHA)
    assert any(url.endswith("/models/faces/versions/3?api-version=2021-10-01-dataplanepreview")
               for _, url in wire.seen)
    with_sas = resolve_model(client, "faces", "3", sas_token="?sv=2024&sig=abc")
    assert with_sas.uri == f"{BLOB}?sv=2024&sig=abc"
    doc = build_manifest(ManifestOptions(model=ref))
    assert doc["modulesContent"]["edgeinfer"]["properties.desired"]["model"]["uri"] == BLOB
    assert check_manifest(doc, schema_dir=schema_folder).ok


def test_download_uri_tag_and_latest(client: Any) -> None:
    ref = resolve_model(client, "faces")
    assert ref.version == "4" and ref.uri == "https://cdn.example.com/faces-4.zip"


def test_registry_errors(client: Any) -> None:
    with pytest.raises(RegistryError, match=f"model faces version 9 does not exist in {REGISTRY}"):
        resolve_model(client, "faces", "9")
    with pytest.raises(RegistryError, match="has no sha256 tag"):
        resolve_model(client, "untagged", "1")
    assert resolve_model(client, "untagged", "1", sha256=SHA).sha256 == SHA
    with pytest.raises(RegistryError, match="no https download URL"):
        resolve_model(client, "internal", "1")
    assert resolve_model(client, "internal", "1", uri="https://cdn.example.com/i.zip").uri.endswith("/i.zip")


def test_no_azure_login_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity's own EnvironmentCredential with nothing set, as on a machine without `az login`: the
    client signs in while it is built, and the SDK's many-line error becomes one line."""
    from azure.identity import EnvironmentCredential

    for var in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                "AZURE_USERNAME", "AZURE_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RegistryError) as err:
        ml_client("edgeinfer-models", subscription_id="00000000-0000-0000-0000-000000000000",
                  credential=EnvironmentCredential())
    text = str(err.value)
    assert text.startswith("cannot sign in to Azure for registry edgeinfer-models: ") and "\n" not in text
    assert text.endswith("-> log in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET "
                         "for a service principal")
