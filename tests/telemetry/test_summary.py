"""Summary windows and the bandwidth claim: on a 60 s clip at 15 fps, summary mode sends >= 99%
fewer bytes than results mode (every byte that reached the file counted, health included)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from edgeinfer.core.sinks.base import Sink
from edgeinfer.core.telemetry.stdio import StdoutTransport
from edgeinfer.core.telemetry.summary import WindowAggregator

from .conftest import ServiceFactory
from .synthetic import clip, detection, frame


def run_clip(make_service: ServiceFactory, path: Path, mode: str) -> tuple[int, dict[str, object]]:
    service = make_service(f"file:{path}", mode=mode, window_s=60.0)
    for r in clip(60, 15):
        service.sink.on_result(r)
    service.sink.close({})
    assert service.drain(20) == 0
    snap = service.snapshot()
    service.close()
    return path.stat().st_size, snap.to_dict()


def test_summary_mode_saves_99_percent_of_results_bytes(tmp_path: Path, make_service: ServiceFactory) -> None:
    results_size, results_stats = run_clip(make_service, tmp_path / "results.jsonl", "results")
    summary_size, summary_stats = run_clip(make_service, tmp_path / "summary.jsonl", "summary")
    saving = 1 - summary_size / results_size
    assert saving >= 0.99, f"summary {summary_size} B vs results {results_size} B: {saving:.2%}"
    # the service counts the same: bytes sent vs what results and raw frames would have cost
    newlines = 3  # one per line written: 1 summary + 2 health
    assert summary_stats["sent_bytes"] == summary_size - newlines
    assert summary_stats["results_bytes"] == results_stats["results_bytes"]
    assert summary_stats["raw_bytes"] == 900 * 640 * 480 * 3
    assert summary_stats["saving_vs_results"] >= 0.99 and summary_stats["saving_vs_raw"] > 0.99999
    lines = [json.loads(x) for x in (tmp_path / "summary.jsonl").read_text().splitlines()]
    assert [e["type"] for e in lines] == ["health", "summary", "health"]
    s = lines[1]
    assert (s["frames"], s["dropped"], s["labels"], sum(s["hist"])) == (900, 0, {"person": 1800}, 1800)
    assert s["fps"] == 15.0 and set(s["latency_ms"]) == {"preprocess", "infer", "decode"}
    assert s["latency_ms"]["infer"]["p50"] == 11.0 and s["latency_ms"]["infer"]["p99"] == 14.0
    assert s["results_bytes"] == results_stats["results_bytes"]


def test_windows_close_on_frame_time_and_count_dropped_frames() -> None:
    agg = WindowAggregator(window_s=1.0)
    closed = [agg.add(frame(i, 10 + i * 0.25, [detection("car", 0.55)]), 100) for i in (0, 1, 2, 3, 6, 7, 11)]
    assert [c is not None for c in closed] == [False, False, False, False, True, False, True]
    first = closed[4]
    assert first is not None
    assert (first["frames"], first["dropped"], first["start"], first["end"]) == (4, 0, 10.0, 10.75)
    assert first["hist"][5] == 4 and first["results_bytes"] == 400 and first["fps"] == 4.0
    second = closed[6]
    assert second is not None and (second["frames"], second["dropped"]) == (2, 2)  # frames 4, 5 skipped
    last = agg.flush()
    assert last is not None and (last["frames"], last["dropped"], last["fps"]) == (1, 3, 0.0)
    assert agg.flush() is None


def test_stdout_transport_writes_one_event_per_line(make_service: ServiceFactory) -> None:
    stream = io.StringIO()
    service = make_service("stdout", transport_obj=StdoutTransport(stream), mode="results")
    assert isinstance(service.sink, Sink)
    for r in clip(1, 5, people=1):
        service.sink.on_result(r)
    assert service.drain(10) == 0
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["seq"] for e in events if e["type"] == "result"] == [1, 2, 3, 4, 5]
    assert events[0]["type"] == "health"


def test_a_window_counts_each_stream_on_its_own() -> None:
    """Two streams reading the same URI: gaps and labels are per stream id, not mixed up by the shared source."""
    agg = WindowAggregator(window_s=10.0)
    for i in (0, 1, 2, 5):  # frames 3 and 4 of the yard dropped
        r = frame(i, 100 + i * 0.1, [detection("person", 0.9)], source="rtsp://cam/x")
        r.stream = "yard"
        agg.add(r, 10)
    for i in (0, 1):
        r = frame(i, 100.05 + i * 0.1, [detection("car", 0.8), detection("car", 0.7)], source="rtsp://cam/x")
        r.stream = "gate"
        agg.add(r, 10)
    window = agg.flush()
    assert window is not None and window["frames"] == 6 and window["dropped"] == 2
    assert window["streams"] == {"yard": {"frames": 4, "dropped": 2, "labels": {"person": 4}},
                                 "gate": {"frames": 2, "dropped": 0, "labels": {"car": 4}}}
    one = WindowAggregator(10.0)
    one.add(frame(0, 1.0), 1)
    plain = one.flush()
    assert plain is not None and plain["frames"] == 1 and "streams" not in plain  # one source: no streams key
