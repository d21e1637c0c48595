"""The runtime bundle's typed error (one line: problem -> fix)."""

from __future__ import annotations

from ...core.errors import EdgeInferError


class BundleError(EdgeInferError):
    """A runtime bundle cannot be built (pip failed, a dependency is missing for the target), or a file
    given as one is not a runtime bundle for the platform and version asked for."""
