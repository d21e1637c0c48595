"""Where the key of an encrypted model package comes from (local settings only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DecryptionConfig(BaseModel):
    """The key that decrypts encrypted model packages; it is never in a package or in remote config."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    key_file: str | None = Field(default=None, description="A 0600 file holding the 32-byte AES-256-GCM key")
