"""Typed errors of the Greengrass adapter (one line each: problem -> fix)."""

from __future__ import annotations

from ..core.errors import EdgeInferError


class RecipeError(EdgeInferError):
    """A component recipe fails the Greengrass schema or the project's stricter checks."""


class GreengrassError(EdgeInferError):
    """The component cannot talk to the Greengrass nucleus, or the nucleus refused a request."""
