"""Health events: model and backend actually active (degraded + reason), system readings, queue
depths from the pipeline's provider, outbox state, link state; periodic."""

from __future__ import annotations

import threading
from pathlib import Path

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.telemetry.events import EventBase, HealthEvent
from edgeinfer.core.telemetry.service import TelemetryService

from .synthetic import run_context


def test_health_reports_what_runs_and_the_pipeline_queues(tmp_path: Path) -> None:
    cfg = EdgeInferConfig.model_validate({"telemetry": {"transport": f"file:{tmp_path / 'e.jsonl'}",
                                                        "health_interval_s": 1.0}})
    service = TelemetryService.from_config(cfg, run_context(degraded=True))
    seen: list[HealthEvent] = []
    three = threading.Event()

    def on_event(e: EventBase) -> None:
        if isinstance(e, HealthEvent):
            seen.append(e)
            if len(seen) >= 3:
                three.set()

    service.add_listener(on_event)
    depths = iter([{"frames": 3, "results": 1}])
    service.set_queue_depths_provider(lambda: next(depths))  # the second call raises StopIteration
    service.start()
    try:
        assert three.wait(10), "periodic health events did not come"
    finally:
        service.close()
    first, second = seen[0], seen[1]
    assert (first.model.name, first.model.version, first.model.sha256) == ("blazeface", "1.2.0", "ab" * 32)
    assert first.backend.active == ["CPUExecutionProvider"] and first.backend.requested == ["cuda", "cpu"]
    assert first.degraded and first.reason == "CUDA EP not available: running on CPU"
    assert first.queues == {"frames": 3, "results": 1} and second.queues == {}  # a failing provider is survived
    assert first.rss_bytes and first.rss_bytes > 10_000_000 and first.mem_percent is not None
    assert first.cpu_percent is not None and first.cpu_percent >= 0
    assert first.outbox is not None and first.outbox.depth == 0 and first.outbox.evicted == {}
    assert first.transport is not None and first.transport.connected and first.transport.transport.startswith("file:")
    assert [h.seq for h in seen[:3]] == [1, 2, 3]
