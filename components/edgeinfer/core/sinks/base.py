"""The sink port. Sinks run on the pipeline's sink thread, in frame order per source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..backends.base import BackendInfo
from ..types import FrameResult


@dataclass(slots=True)
class RunContext:
    """What a sink may want to know about the run it is part of."""

    device_id: str
    model_name: str
    model_version: str
    model_sha256: str
    task: str
    labels: list[str]
    backend: BackendInfo
    extra: dict[str, Any] = field(default_factory=dict)
    component: str = "edgeinfer"  # the Greengrass component it runs as (config ``component``)


@runtime_checkable
class Sink(Protocol):
    def start(self, ctx: RunContext) -> None: ...

    def on_result(self, result: FrameResult) -> None: ...

    def close(self, summary: dict[str, Any]) -> None:
        """Called once at the end with the run summary (the same dict as summary.json)."""
