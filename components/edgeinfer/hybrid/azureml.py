"""The fallback's Azure ML client: POST to an online endpoint's scoring URI with the guarded urllib opener.

Auth: ``key`` sends ``Authorization: Bearer <endpoint key>`` (from ``key_file`` or the ``key_env`` variable, read
once when the client is built); ``aad`` sends the Entra token in ``token_file``, read on every request (the host
refreshes it). ``deployment`` pins a deployment with the ``azureml-model-deployment`` header.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..core.errors import ConfigError
from ..core.fallback.client import Refused, Reply, Unreachable
from ..core.fallback.config import AzureMLEndpoint
from ..core.netguard import Blocked, Outbound
from ..core.netopener import build_opener
from .botoguard import ssl_context

MAX_ANSWER_BYTES = 32 * 1024**2


def _read_secret(path: str, what: str) -> str:
    try:
        value = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror or exc}",
                          f"put the {what} in {path} (readable by edgeinfer only)") from exc
    if not value:
        raise ConfigError(f"the {what} file {path} is empty", f"put the {what} in it")
    return value


class AzureMLClient:
    name = "azureml"

    def __init__(self, endpoint: AzureMLEndpoint, outbound: Outbound, key: str | None) -> None:
        self.endpoint, self.outbound, self._key = endpoint, outbound, key
        outbound.check_url(endpoint.scoring_uri)  # a scoring URI outside fallback.hosts refuses the configuration
        self._opener = build_opener(outbound, ssl_context(endpoint.ca_file))

    @classmethod
    def from_config(cls, endpoint: AzureMLEndpoint, outbound: Outbound) -> AzureMLClient:
        key = None
        if endpoint.auth == "key":
            key = _read_secret(endpoint.key_file, "endpoint key") if endpoint.key_file else os.environ.get(
                endpoint.key_env)
            if not key:
                raise ConfigError(f"fallback.endpoint: no Azure ML endpoint key in ${endpoint.key_env}",
                                  f"set {endpoint.key_env} in edgeinfer's environment, or key_file in the local "
                                  "settings")
        return cls(endpoint, outbound, key)

    def _auth(self) -> str:
        if self.endpoint.auth == "key":
            assert self._key is not None
            return self._key
        assert self.endpoint.token_file is not None
        return _read_secret(self.endpoint.token_file, "Entra token")

    def invoke(self, body: bytes, content_type: str, accept: str, timeout_s: float) -> Reply:
        uri = self.endpoint.scoring_uri
        try:
            headers = {"Content-Type": content_type, "Accept": accept, "Authorization": f"Bearer {self._auth()}"}
        except ConfigError as exc:
            raise Refused(exc.problem, exc.fix) from exc
        if self.endpoint.deployment:
            headers["azureml-model-deployment"] = self.endpoint.deployment
        req = urllib.request.Request(uri, data=body, method="POST", headers=headers)
        try:
            self.outbound.check_url(uri)
            with self._opener.open(req, timeout=timeout_s) as resp:
                return Reply(resp.read(MAX_ANSWER_BYTES), resp.headers.get("Content-Type", ""))
        except Blocked as exc:
            raise Refused(exc.problem, exc.fix) from exc
        except urllib.error.HTTPError as exc:
            exc.close()
            raise Refused(f"Azure ML endpoint answered HTTP {exc.code}",
                          "check the scoring URI, the key and the deployment's health") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"Azure ML endpoint unreachable: {getattr(exc, 'reason', exc)}",
                              "check the device's connection") from exc

    def close(self) -> None:
        pass
