"""The CLI as a user runs it: the demo with no flags, the bench, model commands, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
import yaml

from ..conftest import run_cli


def test_demo_with_no_flags(tmp_path: Path, demo_pkgs: tuple[Path, Path]) -> None:
    res = run_cli("run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "edgeinfer-out"
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    by_name = {Path(r["source"]).name: r for r in lines if r["source"].endswith(".png")}
    astronaut = by_name["00-astronaut.png"]["detections"]
    assert len(astronaut) == 1 and astronaut[0]["label"] == "face" and astronaut[0]["score"] > 0.8
    assert by_name["01-coffee.png"]["detections"] == [] and by_name["02-chelsea.png"]["detections"] == []
    clip = [r for r in lines if r["source"].endswith("clip.avi")]
    assert len(clip) == 45 and [r["frame"] for r in clip] == list(range(45))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 50 and summary["dropped"] == 0 and summary["bad_frames"] == 0
    assert summary["backend"]["backend"] == "onnxruntime" and summary["detections"]["face"] >= 1
    assert summary["cold_start_ms"] > 0
    annotated = sorted(p.name for p in (out / "annotated").iterdir())
    assert "00-astronaut.jpg" in annotated and len(annotated) == 50
    assert cv2.imread(str(out / "annotated" / "00-astronaut.jpg")).shape == (512, 512, 3)
    assert "00-astronaut.png#0" in res.stdout and "face 0.94" in res.stdout  # printed as it happens
    assert "p50 ms" in res.stdout  # the closing table


@pytest.mark.parametrize("which", ["onnx", "tflite"])
def test_bench_json_has_the_ratios(demo_pkgs: tuple[Path, Path], which: str) -> None:
    """Every backend that runs here (ONNX Runtime, LiteRT) is benched against its runtime's own call."""
    pkg = demo_pkgs[0] if which == "onnx" else demo_pkgs[1]
    res = run_cli("bench", "--model", str(pkg), "--frames", "40", "--json")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert ("LiteRT" in rep["backend"] or "litert" in rep["backend"]) == (which == "tflite"), rep["backend"]
    for key in ("bare_p50_ms", "pipeline_p50_ms", "overhead_ratio", "throughput_fps", "bound_fps", "efficiency"):
        assert isinstance(rep[key], float) and rep[key] > 0, key
    assert rep["overhead_ratio"] == pytest.approx(rep["pipeline_p50_ms"] / rep["bare_p50_ms"], rel=1e-2)
    # whole frame for the loop a user writes by hand, edgeinfer sequential and pipelined; the ratios behind the targets
    loops = rep["whole_frame"]
    assert set(loops) == {"hand_written", "sequential", "pipelined"} and rep["hand_written_missing"] is None
    for name, row in loops.items():
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["fps"] > 0, name
        assert row["jitter"] == pytest.approx(row["p99_ms"] / row["p50_ms"], rel=1e-2), name
    hand = loops["hand_written"]
    assert rep["sequential_vs_hand"] == pytest.approx(loops["sequential"]["p50_ms"] / hand["p50_ms"], rel=1e-2)
    assert rep["pipelined_vs_hand"] == pytest.approx(loops["pipelined"]["fps"] / hand["fps"], rel=1e-2)
    assert rep["bound_vs_hand"] == pytest.approx(rep["bound_fps"] / hand["fps"], rel=1e-2)
    assert set(rep["targets"]) == {"sequential_vs_hand <= 1.02", "pipelined_vs_hand >= 0.95 x bound_vs_hand"}


def test_bench_table_shows_every_loop(demo_pkgs: tuple[Path, Path]) -> None:
    res = run_cli("bench", "--model", str(demo_pkgs[0]), "--frames", "20", env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    for text in ("hand-written", "edgeinfer sequential", "edgeinfer pipelined", "p99/p50", "sequential_vs_hand"):
        assert text in res.stdout, text


def test_model_import_inspect_verify(tmp_path: Path, demo_pkgs: tuple[Path, Path]) -> None:
    from .colour_model import make_colour_model

    make_colour_model(tmp_path)
    res = run_cli("model", "import", str(tmp_path / "colour.onnx"), "--task", "classification",
                  "--labels", "red,green,blue", "--out", str(tmp_path / "p"))
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load((tmp_path / "p" / "manifest.yaml").read_text())["labels"] == ["red", "green", "blue"]
    res = run_cli("model", "inspect", str(tmp_path / "p"))
    assert res.returncode == 0 and "classification / onnx" in res.stdout
    res = run_cli("model", "verify", str(tmp_path / "p"))
    assert res.returncode == 0 and res.stdout.count("ok") >= 4


def corrupt_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    data = bytearray((dst / "model.onnx").read_bytes())
    data[1000] ^= 0x55
    (dst / "model.onnx").write_bytes(bytes(data))
    return dst


BAD = [
    (["run", "--model", "/no/such/model"], "does not exist"),
    (["run", "--model", "{tmp}/bad", "--source", "{img}"], "sha256 mismatch"),
    (["run", "--model", "{tmp}/model.xyz", "--task", "detection"], "is a file, not a model package"),
    (["run", "--source", "/no/such/video.mp4", "--model", "{pkg}"], "source '/no/such/video.mp4' does not exist"),
    (["run", "--source", "rtsp:///none", "--model", "{pkg}"], "has no host"),  # a camera not there is waited for
    (["run", "--source", "synthetic:0x0", "--model", "{pkg}"], "outside 16..8192"),
    (["run", "--model", "{pkg}", "--source", "{img}", "--out", "{tmp}/model.xyz/out"], "is under a regular file"),
    (["run", "--model", "{pkg}", "--source", "{img}", "--telemetry", "stdout", "--state-dir", "{tmp}/model.xyz/s"],
     "state_dir"),
    (["run", "--backend", "warp-drive", "--model", "{pkg}", "--source", "{img}"], "unknown backend 'warp-drive'"),
    (["run", "--backend", "litert", "--model", "{pkg}", "--source", "{img}"], "cannot load a onnx model"),
    (["run", "--config", "{tmp}/bad.yaml"], "pipeline.queue_size"),
    (["model", "verify", "{tmp}/bad"], "failed verification"),
    (["model", "import", "{tmp}/model.xyz", "--task", "detection"], "unknown model format"),
    (["model", "optimize", "{pkg}", "--out", "{tmp}/x.engine"], "TensorRT is not installed"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[w for _, w in BAD])
def test_bad_input_is_one_clear_line_and_nonzero_exit(tmp_path: Path, demo_pkgs: tuple[Path, Path],
                                                      demo_media: tuple[Path, Path], args: list[str],
                                                      words: str) -> None:
    corrupt_copy(demo_pkgs[0], tmp_path / "bad")
    (tmp_path / "model.xyz").write_bytes(b"not a model")
    (tmp_path / "bad.yaml").write_text("pipeline:\n  queue_size: 0\n")
    fill = {"tmp": str(tmp_path), "pkg": str(demo_pkgs[0]), "img": str(demo_media[0] / "00-astronaut.png")}
    res = run_cli(*[a.format(**fill) for a in args], cwd=tmp_path, timeout=60)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert words in errors[0] and " -> " in errors[0]  # the problem, then what to do
    assert "Traceback" not in res.stderr
