"""Who may set a config field: the marker each field of the one config schema carries.

* ``remote`` (no marker): a Greengrass deployment or the IoT Edge twin may set it.
* ``local``: only the device's local operator (the local settings file, ``edgeinfer run --config``, the CLI).
  A remote document that sets it to anything but what the device already has is rejected as a whole.
* ``checked:<what>``: a deployment may set it, within what the local settings allow (``remote:``): a model
  path under ``remote.model_dirs``, a camera host in ``remote.source_hosts`` ... (see core/remote.py).

The marker lives in the field's JSON Schema (``x-edgeinfer-scope``), so the generated configuration
reference shows it and ``core/remote.py`` enforces exactly what the schema says.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

SCOPE_KEY = "x-edgeinfer-scope"
Check = Literal["model_path", "source", "transport", "webhook", "model_uri"]
CHECKS: tuple[str, ...] = ("model_path", "source", "transport", "webhook", "model_uri")


def local() -> dict[str, Any]:
    """``Field(json_schema_extra=local())``: only the device's local operator sets this."""
    return {SCOPE_KEY: "local"}


def checked(what: Check) -> dict[str, Any]:
    """``Field(json_schema_extra=checked("source"))``: remote values are checked against ``remote:``."""
    return {SCOPE_KEY: f"checked:{what}"}


def scope_of(extra: Any) -> str:
    """``remote``, ``local`` or ``checked:<what>`` from a field's ``json_schema_extra``."""
    if isinstance(extra, dict):
        value = extra.get(SCOPE_KEY)
        if isinstance(value, str):
            return value
    return "remote"


def local_exclude(model: type[BaseModel]) -> dict[str, Any]:
    """``model_dump(exclude=...)`` of every local-only field of ``model`` and its sections (not lists)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        if scope_of(info.json_schema_extra) == "local":
            out[name] = True
        elif isinstance(ann, type) and issubclass(ann, BaseModel) and (sub := local_exclude(ann)):
            out[name] = sub
    return out
