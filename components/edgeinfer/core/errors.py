"""Typed errors that read as one line: what went wrong and what to do about it."""

from __future__ import annotations

from .redact import redact


class EdgeInferError(Exception):
    """Base error. ``str(err)`` is one line: the problem, then the fix after ' -> '."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem.strip().rstrip(".")
        self.fix = fix.strip().rstrip(".") if fix else None
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.problem if not self.fix else f"{self.problem} -> {self.fix}"
        return redact(" ".join(text.split()))  # errors reach logs, twins and telemetry: never with a secret


class ConfigError(EdgeInferError):
    """A config file, CLI flag, component configuration or twin patch is invalid."""


class ModelError(EdgeInferError):
    """A model file or package is missing, unreadable, corrupt or disagrees with its manifest."""


class BackendError(EdgeInferError):
    """A backend is unknown, not installed, or failed to load the model."""


class SourceError(EdgeInferError):
    """A frame source cannot be opened."""


class FrameError(EdgeInferError):
    """One frame is unreadable or the wrong size: skipped and counted, never fatal."""


class TelemetryError(EdgeInferError):
    """A telemetry event is invalid or too large, or a transport cannot deliver (and says why)."""
