"""What a model component's configuration records about the package it carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelPackageInfo(BaseModel):
    """What a model component's configuration records about the package it carries."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    task: str
    format: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the model file inside the package")
    zip_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the ZIP artifact")
    registry_arn: str | None = None
    registry_version: int | None = None
