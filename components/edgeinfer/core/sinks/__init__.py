"""Sinks receive every FrameResult: results file, annotated frames, summary, telemetry, rules."""

from .base import RunContext, Sink

__all__ = ["RunContext", "Sink"]
