"""Model packages: import from a bare model, zip round trip, verification against the real model."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from edgeinfer.core.errors import ModelError
from edgeinfer.core.model import load_model, resolve_package
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.modelpkg.importer import import_model
from edgeinfer.core.modelpkg.verify import verify_package


def test_import_reads_shapes_from_the_model(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    for src, layout in ((demo_pkgs[0] / "model.onnx", "NCHW"), (demo_pkgs[1] / "model.tflite", "NHWC")):
        out = import_model(src, task="detection", out_dir=tmp_path / layout, labels=["face"],
                           decoder={"type": "ssd_anchors", "input_width": 192, "input_height": 192, "strides": [4],
                                    "interpolated_scale_aspect_ratio": 0.0,
                                    "boxes_output": "reshaped_regressor_face_4",
                                    "scores_output": "reshaped_classifier_face_4"})
        m = load_package(out).manifest
        assert (m.input.layout, m.input.width, m.input.height, m.input.batch) == (layout, 192, 192, 1)
        assert m.outputs == ["reshaped_regressor_face_4", "reshaped_classifier_face_4"]
        assert verify_package(load_package(out)).ok


def test_zip_package_round_trip(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    z = tmp_path / "pkg.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in demo_pkgs[0].iterdir():
            zf.write(p, f"blazeface/{p.name}")  # zipped with a top-level folder
    pkg = load_package(z, cache=tmp_path / "cache")
    assert pkg.manifest.name == "blazeface-full-range" and pkg.model_path.is_file()
    assert load_package(z, cache=tmp_path / "cache").root == pkg.root  # unpacked once


def test_zip_with_unsafe_paths_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(ModelError, match="unsafe path"):
        load_package(z, cache=tmp_path / "cache")


def test_hash_mismatch_is_refused(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(demo_pkgs[0], pkg)
    with open(pkg / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="bytes, manifest says"):
        load_package(pkg)
    report = verify_package(load_package(pkg, verify=False))
    assert not report.ok and report.checks[0][0] == "sha256"


def test_manifest_disagreeing_with_model_fails_verify_and_load(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(demo_pkgs[0], pkg)
    data = yaml.safe_load((pkg / "manifest.yaml").read_text())
    data["input"]["width"] = 128
    data["outputs"] = ["boxes", "scores"]
    data["decoder"]["boxes_output"] = "boxes"
    (pkg / "manifest.yaml").write_text(yaml.safe_dump(data))
    report = verify_package(load_package(pkg))
    failed = {what for what, ok, _ in report.checks if not ok}
    assert failed == {"input", "outputs", "decoder"}
    with pytest.raises(ModelError, match="disagrees with the model's input"):
        load_model(load_package(pkg))


def test_invalid_manifest_is_one_clear_line(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(demo_pkgs[0], pkg)
    data = yaml.safe_load((pkg / "manifest.yaml").read_text())
    data["version"] = "one"
    data["decoder"]["type"] = "yolo9000"
    (pkg / "manifest.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError) as err:
        load_package(pkg)
    msg = str(err.value)
    assert "\n" not in msg and "version" in msg and "decoder" in msg and "-> fix manifest.yaml" in msg


def test_bare_model_needs_a_task_and_imports_on_the_fly(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    onnx_file = tmp_path / "colour.onnx"
    from .colour_model import make_colour_model

    make_colour_model(tmp_path)
    with pytest.raises(ModelError, match="pass --task"):
        resolve_package(onnx_file)
    pkg = resolve_package(onnx_file, task="classification", cache=tmp_path / "cache")
    assert pkg.manifest.task == "classification" and pkg.manifest.input.batch == 8  # dynamic batch axis
