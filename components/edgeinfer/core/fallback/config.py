"""``fallback:`` — when a frame goes to a cloud endpoint, and within what limits.

Where it goes (``endpoint``) and which hosts a connection may reach (``hosts``) are device-local settings: a
deployment or twin may switch fallback on or off and tune the band and the budget, never point the device at
another host. Every connection is still checked against ``hosts`` and netguard's refused addresses.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import scope
from ..netguard import check_patterns

DEFAULT_HOSTS = ("*.amazonaws.com", "*.amazonaws.com.cn", "*.inference.ml.azure.com")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Band(_Section):
    """A frame is uncertain when a result's score lies in [low, high) (low == high: an empty band, never)."""

    low: float = Field(default=0.3, ge=0.0, le=1.0, description="Lowest uncertain score (inclusive)")
    high: float = Field(default=0.6, ge=0.0, le=1.0, description="Scores from here up are certain")

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")
        return self


def _https(url: str, what: str) -> str:
    if not url.startswith("https://"):
        raise ValueError(f"{what} must be an https:// URL")
    return url


class SageMakerEndpoint(_Section):
    """A SageMaker real-time endpoint, called with boto3's sagemaker-runtime InvokeEndpoint. Credentials: the
    Greengrass token exchange service on a core device, boto3's default chain elsewhere."""

    type: Literal["sagemaker"] = "sagemaker"
    endpoint_name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="SageMaker endpoint name")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", description="AWS region, e.g. eu-west-1")
    target_variant: str | None = Field(default=None, max_length=63, description="Production variant to invoke")
    endpoint_url: str | None = Field(default=None, description="https:// URL of a VPC endpoint or a stand-in "
                                     "(default: the region's public endpoint)")
    ca_file: str | None = Field(default=None, description="PEM CA bundle for endpoint_url (default: the system's)")

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _https(v, "endpoint_url")


class AzureMLEndpoint(_Section):
    """An Azure ML online endpoint's scoring URI, called with a plain HTTPS client."""

    type: Literal["azureml"] = "azureml"
    scoring_uri: str = Field(description="https://<endpoint>.<region>.inference.ml.azure.com/score")
    auth: Literal["key", "aad"] = Field(default="key", description="key: the endpoint key; aad: a Microsoft Entra "
                                        "token (read from token_file, refreshed by the host)")
    key_env: str = Field(default="EDGEINFER_AZUREML_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="Environment variable holding the key (auth: key)")
    key_file: str | None = Field(default=None, description="File holding the key (read instead of key_env)")
    token_file: str | None = Field(default=None, description="File holding an Entra access token (auth: aad)")
    deployment: str | None = Field(default=None, max_length=64, description="Pin a deployment "
                                   "(azureml-model-deployment header); default: the endpoint's traffic split")
    ca_file: str | None = Field(default=None, description="PEM CA bundle (default: the system's)")

    @field_validator("scoring_uri")
    @classmethod
    def _url(cls, v: str) -> str:
        return _https(v, "scoring_uri")

    @model_validator(mode="after")
    def _token(self) -> AzureMLEndpoint:
        if self.auth == "aad" and not self.token_file:
            raise ValueError("auth 'aad' needs token_file (a file the host keeps a fresh Entra token in)")
        return self


Endpoint = Annotated[SageMakerEndpoint | AzureMLEndpoint, Field(discriminator="type")]


class FallbackConfig(_Section):
    """Cloud fallback for frames the local model is unsure of (docs/hybrid.md)."""

    enabled: bool = Field(default=False, description="Send uncertain frames to the cloud endpoint")
    endpoint: Endpoint | None = Field(default=None, json_schema_extra=scope.local(),
                                      description="Where frames go: {type: sagemaker, endpoint_name, region} or "
                                      "{type: azureml, scoring_uri, auth}")
    hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_HOSTS), max_length=64,
                             json_schema_extra=scope.local(),
                             description="Hosts a fallback connection may reach (names, *.suffix, IPs, CIDRs)")
    band: Band = Field(default_factory=Band, description="The uncertainty band for every label")
    labels: dict[str, Band] = Field(default_factory=dict, max_length=256, description="Per-label bands")
    on_degraded: bool = Field(default=True, description="Also send frames while the local backend runs degraded "
                              "(a fallback provider), within the budget")
    on_unavailable: bool = Field(default=True, description="Also send frames while the local model cannot run (the "
                                 "pipeline restarting after a model failure; live sources only), within the budget")
    crop: bool = Field(default=False, description="Send only the uncertain boxes' region (plus crop_margin)")
    crop_margin: float = Field(default=0.2, ge=0.0, le=2.0, description="Margin around the crop, share of its size")
    jpeg_quality: int = Field(default=85, ge=30, le=100)
    format: str = Field(default="edgeinfer", pattern=r"^[a-z][a-z0-9_-]{0,31}$",
                        description="Request/response format: edgeinfer (image/jpeg in, detections JSON out), "
                        "json-b64, or one an installed plugin registers (edgeinfer.fallback_formats)")
    per_minute: int = Field(default=30, ge=0, le=10_000, description="Most requests in any 60 s")
    per_day: int = Field(default=5000, ge=0, le=10_000_000, description="Most requests per UTC day")
    timeout_s: float = Field(default=5.0, ge=0.1, le=60.0, description="One request's time limit")
    breaker_failures: int = Field(default=5, ge=1, le=1000, description="Consecutive failures that open the breaker")
    breaker_cooldown_s: float = Field(default=60.0, ge=1.0, le=3600.0,
                                      description="Open breaker: seconds before one trial request")
    queue_size: int = Field(default=4, ge=1, le=64, description="Frames waiting for the worker; more are skipped")
    iou: float = Field(default=0.5, ge=0.05, le=1.0, description="IoU for a cloud detection to match a local one")
    agree_at: float = Field(default=0.8, ge=0.0, le=1.0,
                            description="Below this cloud/local agreement (F1) a frame counts as disagreed")

    _h = field_validator("hosts")(check_patterns)

    @model_validator(mode="after")
    def _endpoint_set(self) -> FallbackConfig:
        if self.enabled and self.endpoint is None:
            raise ValueError("fallback.enabled needs fallback.endpoint, a local setting (the device's local "
                             "settings file): {type: sagemaker, endpoint_name, region} or {type: azureml, "
                             "scoring_uri}")
        return self

    def band_for(self, label: str) -> Band:
        return self.labels.get(label, self.band)
