"""Typed errors of the IoT Edge cloud tooling (each one line: problem -> fix)."""

from __future__ import annotations

from ...core.errors import EdgeInferError


class ManifestError(EdgeInferError):
    """A deployment manifest (or what it is built from) is invalid."""


class RegistryError(EdgeInferError):
    """A model could not be resolved in the Azure ML registry."""


class DeployError(EdgeInferError):
    """IoT Hub refused a deployment or could not be reached."""
