"""The offline wire for azure-ai-ml: a requests adapter answering the registry calls MLClient makes
(discovery, a model version, the version list). Imported only where azure-ai-ml is installed."""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import BaseAdapter

SUB, RG, REGISTRY = "00000000-0000-0000-0000-00000000c0de", "ml-rg", "contoso-models"


class StaticCredential:
    def get_token(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("test-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kw: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("test-token", int(time.time()) + 3600)


def version_body(name: str, version: str, tags: dict[str, str], uri: str) -> dict[str, Any]:
    return {"id": f"azureml://registries/{REGISTRY}/models/{name}/versions/{version}", "name": version,
            "type": "Microsoft.MachineLearningServices/registries/models/versions",
            "properties": {"tags": tags, "properties": {}, "modelUri": uri, "modelType": "custom_model",
                           "flavors": {}, "isAnonymous": False, "isArchived": False}}


@dataclass
class RegistryWire(BaseAdapter):
    """Answers azure-ai-ml's registry calls: discovery, one model version, the version list."""

    versions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def _answer(self, method: str, url: str) -> tuple[int, Any]:
        path = urllib3.util.parse_url(url).path or ""
        if m := re.search(r"/registries/([^/]+)/discovery$", path):
            if m.group(1) != REGISTRY:
                return 404, {"error": {"code": "NotFound", "message": f"registry {m.group(1)} not found"}}
            return 200, {"registryName": REGISTRY, "primaryRegionResourceProviderUri": "https://eastus.api.azureml.ms/",
                         "subscriptionId": SUB, "resourceGroup": RG, "primaryRegion": "eastus", "regions": ["eastus"]}
        prefix = f"/mferp/managementfrontend/subscriptions/{SUB}/resourceGroups/{RG}/providers/" \
                 f"Microsoft.MachineLearningServices/registries/{REGISTRY}/models/"
        if path.startswith(prefix):
            parts = path[len(prefix):].split("/")
            if len(parts) == 3 and (parts[0], parts[2]) in self.versions:
                return 200, self.versions[(parts[0], parts[2])]
            if len(parts) == 2:
                found = [v for (n, _), v in self.versions.items() if n == parts[0]]
                return 200, {"value": sorted(found, key=lambda v: int(v["name"]), reverse=True)[:1]}
        return 404, {"error": {"code": "UserError", "message": f"Could not find asset {path}"}}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.headers.get("Authorization") == "Bearer test-token"
        self.seen.append((str(request.method), str(request.url)))
        status, body = self._answer(str(request.method), str(request.url))
        data = json.dumps(body).encode()
        response = requests.Response()
        response.status_code, response.url, response.request, response.reason = status, str(request.url), request, ""
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(data), status=status, preload_content=False,
                                            headers={"Content-Type": "application/json",
                                                     "Content-Length": str(len(data))})
        response.headers = requests.structures.CaseInsensitiveDict(response.raw.headers)
        return response

    def close(self) -> None:
        pass
