"""Results and annotated frames are bounded over a long stream (a real pipeline, real files):
results.jsonl rotates at ``output.results_max_bytes`` keeping ``output.results_keep`` files, and
annotated frames stay within ``output.annotated_max_files`` / ``annotated_max_bytes``, the oldest
removed first, frames left by an earlier run included. On main one JPEG per frame was written
without limit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgeinfer.core.config import OutputConfig, PipelineConfig
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.pipeline import Pipeline
from edgeinfer.core.sinks.files import AnnotatedFramesSink, JsonlSink, file_sinks
from edgeinfer.core.sources import MemorySource
from tests.core.colour_model import make_colour_model
from tests.telemetry.synthetic import run_context

N = 3000


@pytest.fixture(scope="module")
def colour_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_model(tmp_path_factory.mktemp("colour"))


def images(n: int) -> list[np.ndarray]:
    """Frames with a little noise, so JPEG sizes vary as a camera's do."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        img = np.zeros((48, 64, 3), dtype=np.uint8)
        img[:] = [(255, 0, 0), (0, 255, 0), (0, 0, 255)][i % 3]
        img[: 8 + i % 16] = rng.integers(0, 255, size=(8 + i % 16, 64, 3), dtype=np.uint8)
        out.append(img)
    return out


def run_stream(pkg: Path, output: OutputConfig, n: int = N) -> tuple[dict[str, Any], list[Any]]:
    sinks = file_sinks(output)
    model = load_model(load_package(pkg), max_batch=1)
    try:
        for s in sinks:
            s.start(run_context())
        summary = Pipeline(model, MemorySource(images(n), name="cam"), list(sinks), PipelineConfig()).run()
        for s in sinks:
            s.close(summary)
    finally:
        model.close()
    return summary, sinks


def frames_in(path: Path) -> list[int]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends in a partial line"
    return [json.loads(line)["frame"] for line in data.splitlines()]


def test_results_rotate_and_keep_only_the_newest_files(colour_pkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl.7").write_text("from an earlier run with more kept\n")
    cfg = OutputConfig(dir=str(out), annotate=False, results_max_bytes=8192, results_keep=2)
    summary, sinks = run_stream(colour_pkg, cfg)
    assert summary["frames"] == N
    live, one, two = out / "results.jsonl", out / "results.jsonl.1", out / "results.jsonl.2"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["results.jsonl", "results.jsonl.1", "results.jsonl.2"]  # .3 and the old .7 are gone
    for p in (live, one, two):
        assert 0 < p.stat().st_size <= 8192
    kept = frames_in(two) + frames_in(one) + frames_in(live)
    assert kept == list(range(N - len(kept), N))  # the newest frames, in order, no line lost between files
    assert sum(p.stat().st_size for p in (live, one, two)) <= 3 * 8192
    jsonl = sinks[0]
    assert isinstance(jsonl, JsonlSink) and jsonl.rotations > 10 and jsonl.error is None
    assert "sink_errors" not in summary


def test_keep_zero_keeps_only_the_live_file(colour_pkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = OutputConfig(dir=str(out), annotate=False, results_max_bytes=4096, results_keep=0)
    run_stream(colour_pkg, cfg, n=500)
    assert [p.name for p in out.iterdir()] == ["results.jsonl"]
    assert frames_in(out / "results.jsonl")[-1] == 499 and (out / "results.jsonl").stat().st_size <= 4096


@pytest.mark.parametrize(("max_files", "max_bytes"), [(40, 1 << 30), (100_000, 65_536)], ids=["files", "bytes"])
def test_annotated_frames_stay_within_their_caps_counting_an_earlier_run(colour_pkg: Path, tmp_path: Path,
                                                                          max_files: int, max_bytes: int) -> None:
    out = tmp_path / "out"
    folder = out / "annotated"
    folder.mkdir(parents=True)
    old = []
    for i in range(30):  # an earlier run's frames: older than anything this run writes
        p = folder / f"earlier-{i:06d}.jpg"
        cv2.imwrite(str(p), images(1)[0])
        os.utime(p, (1_600_000_000 + i, 1_600_000_000 + i))
        old.append(p)
    cfg = OutputConfig(dir=str(out), annotated_max_files=max_files, annotated_max_bytes=max_bytes)
    summary, sinks = run_stream(colour_pkg, cfg)
    assert summary["frames"] == N and summary["annotated_frames"] == N
    jpgs = sorted(folder.glob("*.jpg"))
    total = sum(p.stat().st_size for p in jpgs)
    assert len(jpgs) <= max_files and total <= max_bytes
    assert not any(p.exists() for p in old)  # the oldest went first
    kept = sorted(int(p.stem.rsplit("-", 1)[1]) for p in jpgs)
    assert kept == list(range(N - len(kept), N)) and len(kept) >= 20  # this run's newest frames
    for p in jpgs[:3] + jpgs[-3:]:
        assert cv2.imread(str(p)) is not None
    ann = sinks[1]
    assert isinstance(ann, AnnotatedFramesSink) and ann.kept == (len(jpgs), total)
    assert ann.removed == N + 30 - len(jpgs)


def test_the_stream_defaults_are_bounded() -> None:
    d = OutputConfig(dir="x")
    results = (d.results_keep + 1) * d.results_max_bytes
    assert results + d.annotated_max_bytes <= 1 << 30  # under a GiB whatever the stream's length
    sinks = file_sinks(d)
    assert isinstance(sinks[0], JsonlSink) and sinks[0].max_bytes == d.results_max_bytes
    assert isinstance(sinks[1], AnnotatedFramesSink) and sinks[1].max_files == d.annotated_max_files


def test_rotated_results_keep_each_frames_own_answer(colour_pkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_stream(colour_pkg, OutputConfig(dir=str(out), annotate=False, results_max_bytes=4096, results_keep=3), 300)
    seen = 0
    for p in out.glob("results.jsonl*"):
        for line in p.read_text().splitlines():
            r = json.loads(line)
            assert r["classes"][0]["label"] == ["blue", "green", "red"][r["frame"] % 3]
            seen += 1
    assert seen > 0
