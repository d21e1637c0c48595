"""The manifest's ``encryption`` block: the model file is AES-256-GCM ciphertext (see crypto.py).

The block says how and with which key, never the key: ``key_id`` is the first 16 hex digits of the key's
sha256, so a device can tell "wrong key" from "corrupt file" and name the key it needs. The model file's
``sha256`` in ``files`` is of the ciphertext, so integrity is checked without the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALGORITHM: Literal["aes-256-gcm"] = "aes-256-gcm"


class ModelEncryption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["aes-256-gcm"] = Field(description="The model file is nonce (12 bytes) || ciphertext || tag")
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="First 16 hex digits of the key's sha256")
