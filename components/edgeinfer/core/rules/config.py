"""Rule configuration (part of the one config schema)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
