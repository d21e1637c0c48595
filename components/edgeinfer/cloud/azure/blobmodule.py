"""The "Azure Blob Storage on IoT Edge" module, added to a deployment when edgeinfer's captures go to blob.

edgeinfer's data loop uploads captures to the module's local endpoint (``captures.store: {type: azureblob}``,
``http://azureblobstorageoniotedge:11002/<account>``); the module keeps them on a volume and tiers them to a
storage account itself (``deviceToCloudUploadProperties``), deleting local copies once uploaded or after a time
(``deviceAutoDeleteProperties``).

Secrets never appear in the manifest: the local account key is ``$<key_env>`` in the blob module's
``LOCAL_STORAGE_ACCOUNT_KEY`` and in edgeinfer's ``EDGEINFER_BLOB_KEY`` (the variable ``captures.store.key_env``
reads), the cloud connection string is ``$<cloud_connection_env>``; ``edgeinfer azure deploy`` resolves them at
deploy time (deploy.resolve_secrets). The module twin of edgeinfer never holds either. Where edgeinfer's captures
go stays a device-local setting (captures.store in the local settings file): a deployment adds the module, it
cannot point the device elsewhere.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...azure.limits import module_name_problem
from ...core.captures.config import BLOB_MODULE_URL, BlobStore
from .errors import ManifestError

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_MODULE = "azureblobstorageoniotedge"  # the host name BLOB_MODULE_URL (edgeinfer's default endpoint) uses
BLOB_PORT = 11002
BLOB_ROOT = "/blobroot"
EDGEINFER_KEY_ENV = BlobStore.model_fields["key_env"].default  # what edgeinfer reads the local key from
CONTAINER = BlobStore.model_fields["container"].default


class BlobModuleOptions(BaseModel):
    """The blob module's settings in a deployment (``edgeinfer azure manifest --captures-blob ACCOUNT``)."""

    model_config = ConfigDict(extra="forbid")

    module_name: str = DEFAULT_MODULE
    image: str = Field(default="mcr.microsoft.com/azure-blob-storage:latest", pattern=r"^[^\s]+$")
    account_name: str = Field(pattern=r"^[a-z0-9]{3,24}$", description="LOCAL_STORAGE_ACCOUNT_NAME, the local "
                              "account edgeinfer writes to (captures.store.account_name on the device)")
    key_env: str = Field(default="EDGEINFER_BLOB_KEY", pattern=ENV_NAME,
                         description="Variable holding the local account key (base64, 64 bytes) at deploy time")
    volume: str = Field(default="edgeinfer-blob", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$|^/.+$",
                        description="Docker volume or host folder for the module's blobs")
    container: str = Field(default=CONTAINER, pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
                           description="Local container edgeinfer uploads to (captures.store.container)")
    upload: bool = Field(default=True, description="Tier the container to a storage account")
    cloud_connection_env: str = Field(default="EDGEINFER_BLOB_CLOUD_CONNECTION", pattern=ENV_NAME,
                                      description="Variable holding the storage account connection string at "
                                      "deploy time (a container-scoped SAS with write permission is enough)")
    cloud_container: str = Field(default=CONTAINER, pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
                                 description="Container in the storage account (the training side reads it)")
    upload_order: Literal["OldestFirst", "NewestFirst"] = "OldestFirst"
    delete_after_upload: bool = True
    delete_after_minutes: int = Field(default=10080, ge=1, le=525_600,
                                      description="Local copies go after this long (uploaded or not)")
    host_port: int | None = Field(default=None, ge=1, le=65535, description="Publish the blob endpoint on the host "
                                  "too (default: only modules on the IoT Edge network reach it)")

    def model_post_init(self, _: Any) -> None:
        if problem := module_name_problem(self.module_name):
            raise ValueError(problem)


def module_entry(opts: BlobModuleOptions) -> dict[str, Any]:
    """The blob module's $edgeAgent entry (createOptions still an object: the manifest builder encodes it)."""
    host: dict[str, Any] = {"Binds": [f"{opts.volume}:{BLOB_ROOT}"]}
    if opts.host_port is not None:
        host["PortBindings"] = {f"{BLOB_PORT}/tcp": [{"HostPort": str(opts.host_port)}]}
    return {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
            "startupOrder": 5,  # before edgeinfer (10): captures have somewhere to go from the first frame
            "env": {"LOCAL_STORAGE_ACCOUNT_NAME": {"value": opts.account_name},
                    "LOCAL_STORAGE_ACCOUNT_KEY": {"value": f"${opts.key_env}"}},
            "settings": {"image": opts.image, "createOptions": {"HostConfig": host}}}


def desired_properties(opts: BlobModuleOptions) -> dict[str, Any]:
    """The blob module twin: tier edgeinfer's container to the cloud, delete local copies in time."""
    return {
        "deviceToCloudUploadProperties": {
            "uploadOn": opts.upload, "uploadOrder": opts.upload_order,
            "cloudStorageConnectionString": f"${opts.cloud_connection_env}",
            "storageContainersForUpload": {opts.container: {"target": opts.cloud_container}},
            "deleteAfterUpload": opts.delete_after_upload},
        "deviceAutoDeleteProperties": {"deleteOn": True, "deleteAfterMinutes": opts.delete_after_minutes,
                                       "retainWhileUploading": True},
    }


def local_store(opts: BlobModuleOptions) -> dict[str, Any]:
    """The captures.store the device's local settings need for this module (printed by the CLI, documented)."""
    store: dict[str, Any] = {"type": "azureblob", "account_name": opts.account_name, "container": opts.container}
    if opts.module_name != DEFAULT_MODULE:
        store["endpoint"] = BLOB_MODULE_URL.replace(DEFAULT_MODULE, opts.module_name)
    return store


def add_blob_module(content: dict[str, Any], opts: BlobModuleOptions, edgeinfer: str) -> None:
    """Add the module, its twin and edgeinfer's key variable to ``content`` (modulesContent)."""
    agent = content["$edgeAgent"]["properties.desired"]
    modules = agent.setdefault("modules", {})
    if opts.module_name in modules or opts.module_name == edgeinfer:
        raise ManifestError(f"the deployment already has a module {opts.module_name!r}",
                            "drop it from the template, or name the blob module otherwise (--blob-module)")
    modules[opts.module_name] = module_entry(opts)
    modules[edgeinfer].setdefault("env", {})[EDGEINFER_KEY_ENV] = {"value": f"${opts.key_env}"}
    content[opts.module_name] = {"properties.desired": copy.deepcopy(desired_properties(opts))}


def captures_on(config: dict[str, Any]) -> dict[str, Any]:
    """edgeinfer's config with captures on (the blob module is there for them); refused when the config turns
    them off or names a store (a device-local setting, never in the module twin)."""
    out = copy.deepcopy(config)
    captures = out.setdefault("captures", {})
    if captures.get("enabled") is False:
        raise ManifestError("--captures-blob adds the blob module for captures, and the config sets "
                            "captures.enabled: false", "drop --captures-blob, or enable captures in the config")
    if captures.get("store") is not None:
        raise ManifestError("the config sets captures.store: where captures go is a device-local setting, never "
                            "in the module twin", "put captures.store in the device's local settings file")
    captures["enabled"] = True
    return out


#: module environment variables that hold secrets: a manifest carries them only as ``$VARIABLE`` references
SECRET_ENV = frozenset({"LOCAL_STORAGE_ACCOUNT_KEY", EDGEINFER_KEY_ENV})
CLOUD_CONNECTION = ("deviceToCloudUploadProperties", "cloudStorageConnectionString")


def secret_slots(content: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """Where secrets sit in a modulesContent: (where, the object holding it, its key), for the checks and for
    resolving the references at deploy time."""
    slots: list[tuple[str, dict[str, Any], str]] = []
    agent = (content.get("$edgeAgent") or {}).get("properties.desired") or {}
    for name, entry in (agent.get("modules") or {}).items():
        env = (entry.get("env") if isinstance(entry, dict) else None) or {}
        for var in sorted(SECRET_ENV & set(env)):
            if isinstance(env[var], dict):
                slots.append((f"modules.{name}.env.{var}", env[var], "value"))
    for name, section in content.items():
        desired = section.get("properties.desired") if isinstance(section, dict) else None
        upload = desired.get(CLOUD_CONNECTION[0]) if isinstance(desired, dict) else None
        if isinstance(upload, dict) and CLOUD_CONNECTION[1] in upload:
            slots.append((f"{name}.{'.'.join(CLOUD_CONNECTION)}", upload, CLOUD_CONNECTION[1]))
    return slots
