"""Typed errors of the IoT Edge module (each one line: problem -> fix)."""

from __future__ import annotations

from ..core.errors import ConfigError, EdgeInferError, ModelError


class ModuleError(EdgeInferError):
    """The IoT Edge environment or the module client is unusable."""


class DeliveryError(ModelError):
    """A model named in the twin could not be downloaded or failed its checks; the old model stays."""


class NoModelError(ConfigError):
    """The desired properties name no model: the module waits for one."""
