"""``remote:`` — what a deployment or a twin may point the device at. Local settings only.

Remote values of fields marked ``checked:`` (see core/scope.py) must fit these lists; locally set values
need not. Link-local and cloud metadata addresses are refused whatever the lists say (core/netguard.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Where the clouds keep model packages: Azure Blob Storage (public, US Gov, China) and Amazon S3.
DEFAULT_MODEL_HOSTS = ("*.blob.core.windows.net", "*.blob.core.usgovcloudapi.net", "*.blob.core.chinacloudapi.cn",
                       "*.amazonaws.com", "*.amazonaws.com.cn")


class RemotePolicy(BaseModel):
    """What remote settings may name. Hosts: a name, ``*.suffix``, an IP address or a CIDR network."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model_dirs: list[str] = Field(default_factory=list, max_length=64, description="Folders a remote model.path "
                                  "(and the reload command's path) may lie under")
    source_dirs: list[str] = Field(default_factory=list, max_length=64, description="Folders a remote file "
                                   "source (image, folder, video) may lie under")
    source_hosts: list[str] = Field(default_factory=list, max_length=256, description="Hosts a remote rtsp:// "
                                    "or http(s):// source may name (cameras)")
    webhook_hosts: list[str] = Field(default_factory=list, max_length=256, description="Hosts a remote webhook "
                                     "action may post to")
    telemetry_hosts: list[str] = Field(default_factory=list, max_length=64, description="Hosts a remote "
                                       "mqtt(s):// telemetry transport may name")
    model_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_MODEL_HOSTS), max_length=256,
                                   description="Hosts model downloads (the twin's model.uri) may come from")
    model_http: bool = Field(default=False, description="Allow http:// model downloads (https only when false)")
