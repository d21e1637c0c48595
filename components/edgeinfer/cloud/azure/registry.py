"""Models from the Azure ML registry (azure-ai-ml, the optional ``edgeinfer[azureml]`` extra).

A registry model version becomes the twin's ``model: {name, version, uri, sha256}``:
* ``sha256``: the version's ``sha256`` tag (or property), set when it was registered;
* ``uri``: an https URL a device can download: the ``download_uri`` tag, else the asset's own https
  path (a blob URL; append a read SAS with ``sas_token``), never an ``azureml://`` URI.
"""

from __future__ import annotations

import re
from typing import Any

from ...azure.modelref import ModelRef
from ...core.plugins import install_hint
from .errors import RegistryError

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def ml_client(registry: str, subscription_id: str | None = None, resource_group: str | None = None,
              credential: Any = None, **kwargs: Any) -> Any:
    """An ``MLClient`` bound to an Azure ML registry (``DefaultAzureCredential`` unless one is given)."""
    try:
        from azure.ai.ml import MLClient
    except ImportError as exc:
        raise RegistryError(f"azure-ai-ml is not installed ({exc.name})", install_hint("azure.ai.ml")) from exc
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    try:  # with a registry name the client asks the service where the registry lives: it signs in here
        return MLClient(credential, subscription_id=subscription_id, resource_group_name=resource_group,
                        registry_name=registry, **kwargs)
    except ClientAuthenticationError as exc:
        raise RegistryError(f"cannot sign in to Azure for registry {registry}: {_first_line(exc)}",
                            "log in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                            "AZURE_CLIENT_SECRET for a service principal") from exc
    except AzureError as exc:
        raise RegistryError(f"cannot reach the Azure ML registry {registry}: {_first_line(exc)}",
                            "check the registry name and your network") from exc


def _first_line(exc: BaseException) -> str:
    """The SDK's messages run to a hundred lines (one per credential tried): the first says what failed."""
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _lookup(meta: dict[str, Any] | None, key: str) -> str | None:
    value = (meta or {}).get(key)
    return str(value) if value not in (None, "") else None


def resolve_model(client: Any, name: str, version: str | None = None, uri: str | None = None,
                  sha256: str | None = None, sas_token: str | None = None) -> ModelRef:
    """The ModelRef for registry model ``name`` (``version``, or the latest). Raises RegistryError."""
    try:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    except ImportError as exc:
        raise RegistryError("azure-core is not installed", install_hint("azure.core")) from exc
    scope = getattr(client, "_operation_scope", None)
    where = getattr(scope, "registry_name", None) or "the Azure ML registry"
    try:
        model = client.models.get(name=name, version=version) if version else client.models.get(name=name,
                                                                                                label="latest")
    except ResourceNotFoundError as exc:
        raise RegistryError(f"model {name} version {version or 'latest'} does not exist in {where}",
                            f"list the versions with `az ml model list --name {name} --registry-name {where}`") from exc
    except HttpResponseError as exc:
        raise RegistryError(f"reading model {name} {version or 'latest'} from {where} failed: {exc.message}",
                            "check the registry name and your access (az login)") from exc
    tags, props = getattr(model, "tags", None), getattr(model, "properties", None)
    digest = sha256 or _lookup(tags, "sha256") or _lookup(props, "sha256")
    if not digest or not SHA256.match(digest):
        raise RegistryError(f"model {name} {model.version} has no sha256 tag",
                            "tag the version with the package's sha256 (az ml model update --set tags.sha256=...) "
                            "or pass --model-sha256")
    url = uri or _lookup(tags, "download_uri") or str(getattr(model, "path", "") or "")
    if not url.lower().startswith("https://"):
        raise RegistryError(f"model {name} {model.version} has no https download URL (path {url!r})",
                            "tag it with download_uri, or pass --model-uri (e.g. a blob SAS URL)")
    if sas_token and not uri:
        url = f"{url}{'&' if '?' in url else '?'}{sas_token.lstrip('?')}"
    return ModelRef(name=name, version=str(model.version), uri=url, sha256=digest.lower())
