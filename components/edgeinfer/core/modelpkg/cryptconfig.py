"""Where the key of an encrypted model package comes from (local settings only).

One source per device: ``key_file`` (any host), ``greengrass_secret`` (the Greengrass component asks the
secret manager component over IPC) or ``iotedge_wrapped_key`` (the IoT Edge module unwraps it through the
workload API, backed by the device's HSM/TPM). The key itself is never in a package or in remote config.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DecryptionConfig(BaseModel):
    """The key that decrypts encrypted model packages; it is never in a package or in remote config."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    key_file: str | None = Field(default=None, description="A 0600 file holding the 32-byte AES-256-GCM key "
                                 "(raw, hex or base64), owned by the service user")
    greengrass_secret: str | None = Field(
        default=None, min_length=1, max_length=2048,
        description="Greengrass: the secret (ARN or name) in aws.greengrass.SecretManager holding the key (secret "
        "binary, or a hex/base64 string); the component's accessControl must grant aws.greengrass#GetSecretValue "
        "on it")
    iotedge_wrapped_key: str | None = Field(
        default=None, description="IoT Edge: the key wrapped by the workload API (the device's HSM/TPM), a 0600 "
        "file the module writes from iotedge_seal_key_file and unwraps in memory at each model load")
    iotedge_seal_key_file: str | None = Field(
        default=None, description="IoT Edge: a clear 0600 key file the module wraps into iotedge_wrapped_key on "
        "first use, then deletes")

    @model_validator(mode="after")
    def _one_source(self) -> DecryptionConfig:
        sources = [k for k in ("key_file", "greengrass_secret", "iotedge_wrapped_key") if getattr(self, k)]
        if len(sources) > 1:
            raise ValueError(f"give one key source, not {' and '.join(sources)}")
        if self.iotedge_seal_key_file and not self.iotedge_wrapped_key:
            raise ValueError("iotedge_seal_key_file needs iotedge_wrapped_key (where the wrapped key is kept)")
        return self

    @property
    def configured(self) -> str | None:
        """The name of the configured source, or None."""
        return next((k for k in ("key_file", "greengrass_secret", "iotedge_wrapped_key") if getattr(self, k)), None)
