"""The twin's model delivery fields: ``model: {name, version, uri, sha256[, size]}``.

They sit in the desired ``model`` section next to the core's own model settings (path, task, ...);
``split_model`` separates the two so the core config is validated on its own.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.config import one_line
from ..core.errors import ConfigError

DELIVERY_KEYS = ("name", "version", "uri", "sha256", "size")


class ModelRef(BaseModel):
    """A model version to download, check and swap in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=256)
    version: str = Field(min_length=1, max_length=128)
    uri: str = Field(description="https:// URL of the model package (.zip) or model file, on a host of "
                     "remote.model_hosts (local settings); http:// only with remote.model_http")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file the URI serves")
    size: int | None = Field(default=None, ge=1, description="Expected size in bytes (checked while downloading)")

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("uri")
    @classmethod
    def _scheme(cls, v: str) -> str:
        scheme = urlsplit(v).scheme.lower()
        if scheme == "azureml":
            raise ValueError("azureml:// URIs cannot be downloaded by a device; `edgeinfer azure manifest "
                             "--aml-model` resolves them to a download URL")
        if scheme not in ("https", "http") or not urlsplit(v).netloc:
            raise ValueError(f"unsupported model URI {v!r}: use an https:// URL")
        return v

    def label(self) -> str:
        return f"{self.name} {self.version}"


def split_model(desired: dict[str, Any]) -> tuple[ModelRef | None, dict[str, Any]]:
    """(delivery, the rest of the document) from a desired-properties document. Raises ConfigError."""
    doc = copy.deepcopy(desired)
    model = doc.get("model")
    if not isinstance(model, dict):
        return None, doc
    fields = {k: model.pop(k) for k in DELIVERY_KEYS if k in model}
    if not model:
        doc.pop("model")
    if not fields:
        return None, doc
    try:
        return ModelRef.model_validate(fields), doc
    except ValidationError as exc:
        raise ConfigError(f"invalid model delivery: {one_line(exc).replace('(root)', 'model')}",
                          "give model.name, model.version, model.uri (https://) and model.sha256 (64 hex)") from exc
