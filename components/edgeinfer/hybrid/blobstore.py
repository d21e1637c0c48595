"""The captures' Azure store: the Azure Blob Storage on IoT Edge module's local endpoint, with azure-storage-blob.

The module (added to the deployment manifest when captures are on) keeps the blobs on the device and tiers them
to a storage account in the cloud by itself; edgeinfer only writes to it, through netguard (``captures.hosts``:
the module's name on the IoT Edge network by default). The account key is the module's
``LOCAL_STORAGE_ACCOUNT_KEY``, from ``key_file`` or the ``key_env`` variable.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContentSettings

from ..core.captures.config import BlobStore
from ..core.captures.uploader import StoreUnavailable
from ..core.errors import ConfigError
from ..core.netguard import Blocked, Outbound
from .requestsguard import guarded_session


class BlobCaptureStore:
    name = "azureblob"

    def __init__(self, settings: BlobStore, service: BlobServiceClient) -> None:
        self.settings = settings
        self._service = service
        self._container = service.get_container_client(settings.container)
        self._ready = False

    @classmethod
    def from_config(cls, settings: BlobStore, outbound: Outbound) -> BlobCaptureStore:
        outbound.check_url(settings.url())  # an endpoint outside captures.hosts refuses the configuration
        if settings.key_file:
            key = Path(settings.key_file).expanduser().read_text().strip()
        else:
            key = os.environ.get(settings.key_env, "")
        if not key:
            raise ConfigError(f"captures.store: no blob account key in ${settings.key_env}",
                              f"set {settings.key_env} to the blob module's LOCAL_STORAGE_ACCOUNT_KEY, or key_file")
        transport = RequestsTransport(session=guarded_session(outbound), session_owner=True)
        service = BlobServiceClient(settings.url(), credential={"account_name": settings.account_name,
                                                                 "account_key": key},
                                    transport=transport, retry_total=0)
        return cls(settings, service)

    def put(self, key: str, data: bytes, content_type: str, timeout_s: float) -> None:
        try:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container(timeout=int(timeout_s))
                self._ready = True
            self._container.upload_blob(key, data, overwrite=True, timeout=int(timeout_s),
                                        content_settings=ContentSettings(content_type=content_type),
                                        connection_timeout=timeout_s, read_timeout=timeout_s)
        except Blocked as exc:
            raise StoreUnavailable(exc.problem, exc.fix) from exc
        except HttpResponseError as exc:
            raise StoreUnavailable(f"the blob endpoint answered HTTP {exc.status_code} for {key}",
                                   "check the account name, key and container") from exc
        except AzureError as exc:
            raise StoreUnavailable(f"the blob endpoint is unreachable: {type(exc).__name__}",
                                   "uploads resume when it is back") from exc

    def uri(self, key: str) -> str:
        return f"{self.settings.url()}/{self.settings.container}/{key}"

    def close(self) -> None:
        self._service.close()
