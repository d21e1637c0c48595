"""`edgeinfer model optimize PKG --to ...` on the real demo face detector (BlazeFace full range).

Calibration: the demo clip (45 frames); held out: the sample photos and variants of them (20 frames). Each
optimised package is then run by `edgeinfer run` and must find the faces the original finds. A quantisation
calibrated on blank frames must be caught by the report: written as rejected, exit 1, and refused by
`edgeinfer aws register` unless forced.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgeinfer.core.errors import ConfigError, ModelError
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.optimize.job import OptimizeOptions, optimize_package
from edgeinfer.core.optimize.lineage import check_publishable, lineage_of

from ..conftest import run_cli
from .optimize_frames import heldout_folder

pytest.importorskip("ai_edge_quantizer", reason="pip install 'edgeinfer[optimize]'")
pytest.importorskip("sympy", reason="pip install 'edgeinfer[optimize]'")


@pytest.fixture(scope="module")
def heldout(demo_media: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return heldout_folder(demo_media[0], tmp_path_factory.mktemp("heldout"))


def _faces(results: Path) -> dict[str, int]:
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    return {Path(r["source"]).stem: len(r["detections"]) for r in lines}


@pytest.mark.parametrize(("target", "which"), [("onnx-int8", 0), ("tflite-int8", 1)])
def test_demo_model_quantised_finds_the_faces_and_passes_its_report(
        target: str, which: int, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], heldout: Path,
        tmp_path: Path) -> None:
    source, out = demo_pkgs[which], tmp_path / target
    done = run_cli("model", "optimize", str(source), "--to", target, "--calibration", str(demo_media[1]),
                   "--heldout", str(heldout), "--out", str(out), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "accepted" and report["failures"] == []
    face = report["labels"]["face"]
    assert face["original"] >= 8 and face["precision"] >= 0.95 and face["recall"] >= 0.95
    assert face["mean_iou"] >= 0.85 and abs(face["score_delta"]) <= 0.1
    assert report["heldout_frames"] == 20 and report["calibration_frames"] == 45
    assert report["optimized"]["size_bytes"] < report["original"]["size_bytes"]
    assert report["original"]["latency_ms_p50"] > 0 and report["optimized"]["latency_ms_p50"] > 0
    pkg = load_package(out)  # every file's sha256 checks
    m, src = pkg.manifest, load_package(source).manifest
    assert (m.decoder, m.labels, m.input, m.task) == (src.decoder, src.labels, src.input, src.task)
    assert m.name == f"{src.name}-{target}" and {f.path for f in m.files} >= {m.model_file, "agreement.json"}
    lineage = lineage_of(m)
    assert lineage is not None and lineage.method == target and lineage.verdict == "accepted"
    assert lineage.from_sha256 == load_package(source).model_sha256 and lineage.calibration_frames == 45
    assert lineage.calibration_sha256 != lineage.heldout_sha256
    assert json.loads((out / "agreement.json").read_text())["verdict"] == "accepted"
    assert (out / "agreement.png").read_bytes()[:4] == b"\x89PNG"
    # the optimised package runs like any other and finds the faces the original finds
    runs = {}
    for name, pkg_dir in (("original", source), ("optimised", out)):
        r = run_cli("run", "--model", str(pkg_dir), "--source", str(demo_media[0]), "--quiet", "--out",
                    str(tmp_path / f"run-{name}"))
        assert r.returncode == 0, r.stdout + r.stderr
        runs[name] = _faces(tmp_path / f"run-{name}" / "results.jsonl")
    assert runs["optimised"] == runs["original"]
    assert runs["optimised"]["00-astronaut"] == 1 and runs["optimised"]["03-camera"] == 1
    assert runs["optimised"]["02-chelsea"] == 0  # the cat


def test_blank_calibration_is_caught_written_rejected_and_not_published(
        demo_pkgs: tuple[Path, Path], heldout: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(8):
        cv2.imwrite(str(blank / f"{i}.png"), np.zeros((480, 640, 3), np.uint8))
    out = tmp_path / "broken"
    done = run_cli("model", "optimize", str(demo_pkgs[1]), "--to", "tflite-int8", "--calibration", str(blank),
                   "--heldout", str(heldout), "--out", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join((done.stdout + done.stderr).split())
    assert "rejected" in text and "missed its agreement thresholds" in text and "Traceback" not in text
    report = json.loads((out / "agreement.json").read_text())
    assert report["verdict"] == "rejected" and report["failures"]
    assert any("score delta" in f or "recall" in f for f in report["failures"])
    manifest = load_package(out).manifest
    assert yaml.safe_load((out / "manifest.yaml").read_text())["source"]["optimize.verdict"] == "rejected"
    with pytest.raises(ModelError, match="rejected by its agreement report") as err:
        check_publishable(manifest)
    assert "--force" in str(err.value)
    assert check_publishable(manifest, force=True) is not None
    # --accept-below: the same package is written, accepted below the thresholds, and the command succeeds
    again = run_cli("model", "optimize", str(demo_pkgs[1]), "--to", "tflite-int8", "--calibration", str(blank),
                    "--heldout", str(heldout), "--out", str(tmp_path / "accepted"), "--accept-below")
    assert again.returncode == 0, again.stdout + again.stderr
    assert lineage_of(load_package(tmp_path / "accepted").manifest).verdict == "accepted-below"  # type: ignore[union-attr]


def test_fp16_needs_no_calibration_and_keeps_every_detection(demo_pkgs: tuple[Path, Path], heldout: Path,
                                                            tmp_path: Path) -> None:
    options = OptimizeOptions(target="onnx-fp16", heldout=str(heldout), repeats=0)
    outcome = optimize_package(demo_pkgs[0], tmp_path / "fp16", options)
    r = outcome.report
    assert r.verdict == "accepted" and r.precision == 1.0 and r.recall == 1.0 and r.calibration_frames == 0
    assert lineage_of(load_package(outcome.package).manifest).calibration_sha256 is None  # type: ignore[union-attr]


def test_bad_input_is_one_line_with_the_fix(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a tflite package"):
        optimize_package(demo_pkgs[0], tmp_path / "a", OptimizeOptions(target="tflite-int8",
                                                                       calibration=str(demo_media[1])))
    with pytest.raises(ConfigError, match="needs frames"):
        optimize_package(demo_pkgs[0], tmp_path / "b", OptimizeOptions(target="onnx-int8"))
    with pytest.raises(ConfigError, match="live or synthetic"):
        optimize_package(demo_pkgs[0], tmp_path / "c", OptimizeOptions(target="onnx-int8", calibration="0"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        optimize_package(demo_pkgs[0], tmp_path / "taken", OptimizeOptions(target="onnx-fp16",
                                                                           calibration=str(demo_media[0])))
    r = run_cli("model", "optimize", str(demo_pkgs[0]), "--to", "onnx-int4", "--out", str(tmp_path / "d"))
    assert r.returncode == 2 and "not one of" in r.stderr
