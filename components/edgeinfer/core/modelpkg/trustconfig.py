"""Which model packages a device accepts (local settings only: a deployment can never loosen it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .cryptconfig import DecryptionConfig


class TrustConfig(BaseModel):
    """Signed and encrypted model packages (see docs/security.md). Local settings only."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    keys: list[str] = Field(default_factory=list, max_length=64,
                            description="Public key files trusted to sign model packages; when any are given, "
                            "unsigned, wrongly signed and tampered packages are refused")
    allow_downgrade: bool = Field(default=False, description="Accept a signed package older than the one that "
                                  "runs (replay protection off)")
    decryption: DecryptionConfig = Field(default_factory=DecryptionConfig)
