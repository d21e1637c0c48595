"""Results and annotated sinks on a disk that fills (real tmpfs): the run finishes with every frame
inferred, the failing sink is disabled with a counted, logged-once error, the other sinks go on, no
partial line or half JPEG is left, and a disabled sink writes again once there is room."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeinfer.core.config import OutputConfig, PipelineConfig
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.pipeline import Pipeline
from edgeinfer.core.sinks.files import (
    RETRY_S,
    AnnotatedFramesSink,
    JsonlSink,
    file_sinks,
    sink_errors,
    write_json_atomic,
)
from edgeinfer.core.sources import MemorySource
from edgeinfer.core.types import FrameResult
from tests.core.colour_model import frame, make_colour_model
from tests.telemetry.synthetic import detection, run_context
from tests.telemetry.synthetic import frame as result_frame

from .diskfull import SmallDisk, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")


@pytest.fixture(scope="module")
def colour_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_model(tmp_path_factory.mktemp("colour"))


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Callable[[Path, int], SmallDisk]]:
    made: list[SmallDisk] = []

    def mount(path: Path, size: int) -> SmallDisk:
        d = SmallDisk(path, size).__enter__()
        made.append(d)
        return d

    yield mount
    for d in made:
        d.__exit__(None, None, None)


class Schedule:
    """A sink that runs ``at[k]()`` before the sinks after it see frame ``k``."""

    def __init__(self, at: dict[int, Callable[[], None]]) -> None:
        self.at = at
        self.frames = 0

    def start(self, ctx: Any) -> None:
        pass

    def on_result(self, result: FrameResult) -> None:
        self.frames += 1
        if (hook := self.at.get(result.index)) is not None:
            hook()

    def close(self, summary: dict[str, Any]) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def whole_lines(path: Path) -> list[int]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "results.jsonl ends in a partial line"
    return [json.loads(line)["frame"] for line in data.splitlines()]


def run(pkg: Path, output: OutputConfig, at: dict[int, Callable[[], None]], n: int) -> tuple[dict[str, Any], list[Any]]:
    sinks = file_sinks(output)
    sched = Schedule(at)
    model = load_model(load_package(pkg), max_batch=1)
    try:
        for s in sinks:
            s.start(run_context())
        summary = Pipeline(model, MemorySource([frame(c) for c in ["red", "green", "blue"] * (n // 3)]),
                           [sched, *sinks], PipelineConfig()).run()
        for s in sinks:
            s.close(summary)
    finally:
        model.close()
    assert sched.frames == n
    return summary, sinks


def test_a_full_output_disk_disables_the_sinks_and_the_run_finishes(
        colour_pkg: Path, tmp_path: Path, disk: Callable[[Path, int], SmallDisk],
        caplog: pytest.LogCaptureFixture) -> None:
    out = disk(tmp_path / "out", 1 << 20)
    n = 600
    with caplog.at_level(logging.ERROR, logger="edgeinfer.core.sinks.files"):
        summary, sinks = run(colour_pkg, OutputConfig(dir=str(out.path)), {100: out.fill}, n)
    assert summary["frames"] == n
    errors = summary["sink_errors"]
    assert set(errors) == {"results", "annotated"}
    for name in ("results", "annotated"):
        assert "No space left on device" in errors[name]["error"]
        assert errors[name]["failed_writes"] >= 1 and errors[name]["frames_not_written"] >= 1
    assert sink_errors(sinks).keys() == {"results", "annotated"}
    assert [s.error is not None for s in sinks] == [True, True]
    logged = [r for r in caplog.records if "sink disabled" in r.getMessage()]
    assert len(logged) == 2  # once per sink, not once per frame
    frames = whole_lines(out.path / "results.jsonl")
    assert frames == list(range(len(frames))) and len(frames) < n  # the lines before the disk filled, whole
    written = 0
    for p in (out.path / "annotated").glob("*.jpg"):  # no half JPEG left behind
        assert cv2.imread(str(p)) is not None, p.name
        written += 1
    assert written == summary["annotated_frames"] and 0 < written <= 100


def test_one_failing_sink_does_not_stop_the_others(colour_pkg: Path, tmp_path: Path,
                                                   disk: Callable[[Path, int], SmallDisk]) -> None:
    out = tmp_path / "out"
    annotated = disk(out / "annotated", 512 << 10)  # only the annotated frames' folder fills
    n = 300
    summary, sinks = run(colour_pkg, OutputConfig(dir=str(out)), {30: annotated.fill}, n)
    assert summary["frames"] == n
    assert set(summary["sink_errors"]) == {"annotated"}
    assert whole_lines(out / "results.jsonl") == list(range(n))  # results got every frame
    assert sinks[0].error is None and sinks[1].error is not None


def test_a_disabled_sink_writes_again_when_space_returns(tmp_path: Path,
                                                         disk: Callable[[Path, int], SmallDisk]) -> None:
    d = disk(tmp_path / "out", 1 << 20)
    clock = Clock()
    jsonl = JsonlSink(d.path / "results.jsonl", clock=clock)
    ann = AnnotatedFramesSink(d.path / "annotated", clock=clock)
    img = np.full((120, 160, 3), 90, dtype=np.uint8)
    for s in (jsonl, ann):
        s.start(run_context())

    def feed(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            r = dataclasses.replace(result_frame(i, 1_700_000_000.0 + i, [detection()] * 20), image=img)
            jsonl.on_result(r)
            ann.on_result(r)

    feed(0, 10)
    d.fill()
    feed(10, 400)  # 400 lines of 20 detections: more than the 64 KiB write buffer, so a write fails
    assert jsonl.error and ann.error
    d.free()
    feed(400, 410)  # still within the retry delay: skipped, counted
    assert jsonl.error and ann.error
    clock.t += RETRY_S
    feed(410, 420)
    assert jsonl.error is None and ann.error is None  # writing again
    summary: dict[str, Any] = {}
    for s in (jsonl, ann):
        s.close(summary)
    frames = whole_lines(d.path / "results.jsonl")
    assert frames[-10:] == list(range(410, 420))
    assert frames == sorted(set(frames))  # whole lines, each once, in order
    skipped = summary["sink_errors"]["results"]["frames_not_written"]
    assert len(frames) + skipped == 420
    assert summary["sink_errors"]["results"]["error"] is not None  # the last error stays in the report
    assert all((d.path / "annotated" / f"cam0-{i:06d}.jpg").exists() for i in range(410, 420))
    assert sink_errors([jsonl, ann]) == {}


def test_write_json_atomic_on_a_full_disk_leaves_the_old_file_and_no_tmp(
        tmp_path: Path, disk: Callable[[Path, int], SmallDisk]) -> None:
    d = disk(tmp_path / "out", 256 << 10)
    target = d.path / "summary.json"
    write_json_atomic(target, {"frames": 1})
    d.fill()
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(target, {"frames": 2, "pad": "x" * 8192})
    assert json.loads(target.read_text()) == {"frames": 1}
    assert sorted(p.name for p in d.path.iterdir()) == [".ballast", "summary.json"]
