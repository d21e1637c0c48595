"""``captures:`` — which frames go back to training, how many are kept, and where they are uploaded.

The store (bucket, blob endpoint, credentials) and the hosts uploads may reach are device-local settings.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import scope
from ..netguard import check_patterns

DEFAULT_HOSTS = ("*.amazonaws.com", "*.amazonaws.com.cn", "azureblobstorageoniotedge", "*.blob.core.windows.net")
BLOB_MODULE_URL = "http://azureblobstorageoniotedge:11002/{account}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _prefix(v: str) -> str:
    if not v.startswith("captures/") or ".." in v or not v.endswith("/"):
        raise ValueError("must start with 'captures/' and end with '/' (the device may write only there)")
    return v


class S3Store(_Section):
    """The artifact bucket's captures/ prefix (the CDK stack grants exactly that to the token exchange role)."""

    type: Literal["s3"] = "s3"
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
    prefix: str = Field(default="captures/", description="Key prefix; under captures/")
    endpoint_url: str | None = Field(default=None, description="https:// URL of a VPC endpoint or a stand-in")
    ca_file: str | None = None

    _p = field_validator("prefix")(_prefix)

    @field_validator("endpoint_url")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("https://"):
            raise ValueError("endpoint_url must be an https:// URL")
        return v


class BlobStore(_Section):
    """The Azure Blob Storage on IoT Edge module's local endpoint (it tiers to the cloud itself)."""

    type: Literal["azureblob"] = "azureblob"
    account_name: str = Field(pattern=r"^[a-z0-9]{3,24}$", description="The module's LOCAL_STORAGE_ACCOUNT_NAME")
    key_env: str = Field(default="EDGEINFER_BLOB_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="Environment variable holding the module's LOCAL_STORAGE_ACCOUNT_KEY")
    key_file: str | None = Field(default=None, description="File holding the key (read instead of key_env)")
    endpoint: str | None = Field(default=None, description=f"Blob endpoint (default {BLOB_MODULE_URL})")
    container: str = Field(default="edgeinfer-captures", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    prefix: str = Field(default="captures/")

    _p = field_validator("prefix")(_prefix)

    def url(self) -> str:
        return (self.endpoint or BLOB_MODULE_URL).format(account=self.account_name).rstrip("/")


Store = Annotated[S3Store | BlobStore, Field(discriminator="type")]


class CapturesConfig(_Section):
    """Frames kept for labelling and uploaded when connected (docs/hybrid.md)."""

    enabled: bool = Field(default=False, description="Capture frames for the data loop")
    store: Store | None = Field(default=None, json_schema_extra=scope.local(),
                                description="Where captures go: {type: s3, bucket, region} or {type: azureblob, "
                                "account_name}; None = kept on the device only")
    hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_HOSTS), max_length=64,
                             json_schema_extra=scope.local(), description="Hosts uploads may reach")
    dir: str | None = Field(default=None, json_schema_extra=scope.local(),
                            description="The queue's folder (default <state_dir>/captures)")
    uncertain: bool = Field(default=True, description="Capture frames in the fallback's uncertainty band")
    disagreed: bool = Field(default=True, description="Capture frames where the cloud disagreed")
    alerts: bool = Field(default=True, description="Capture frames that fired an alert rule")
    sample_rate: float = Field(default=0.001, ge=0.0, le=1.0, description="Share of other frames captured at random")
    max_per_minute: int = Field(default=30, ge=1, le=6000, description="Most captures in any 60 s")
    max_bytes: int = Field(default=256 * 1024**2, ge=1024**2, le=1 << 40, description="Queue size cap in bytes")
    max_files: int = Field(default=10_000, ge=1, le=10_000_000, description="Queue cap in frames")
    jpeg_quality: int = Field(default=90, ge=30, le=100)
    upload_interval_s: float = Field(default=30.0, ge=0.1, le=86_400.0,
                                     description="How often the uploader looks for work (and retries after a failure)")
    timeout_s: float = Field(default=30.0, ge=1.0, le=600.0, description="One upload's time limit")

    _h = field_validator("hosts")(check_patterns)
