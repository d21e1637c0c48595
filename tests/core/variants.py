"""Variants of the real demo package for the health gate: the same model under a new version (behaves the
same, other bytes), and a copy whose face logits are pushed down so it loads, runs and finds nothing."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import helper, numpy_helper

SCORES = "reshaped_classifier_face_4"


def _package(src: Path, out: Path, model: onnx.ModelProto, version: str) -> Path:
    shutil.copytree(src, out)
    onnx.save(model, str(out / "model.onnx"))
    data = (out / "model.onnx").read_bytes()
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    manifest["version"] = version
    manifest["files"] = [{"path": "model.onnx", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def same_model(src: Path, out: Path, version: str = "2.0.0") -> Path:
    """The demo model as another version: identical graph, a different doc string (so another sha256)."""
    model = onnx.load(str(src / "model.onnx"))
    model.doc_string = f"edgeinfer test variant {version}"
    return _package(src, out, model, version)


def blind_model(src: Path, out: Path, version: str = "2.0.0", bias: float = -40.0) -> Path:
    """The demo model with ``bias`` added to its face logits: every score ~0, so it detects nothing."""
    model = onnx.load(str(src / "model.onnx"))
    graph = model.graph
    producer = next(n for n in graph.node if SCORES in n.output)
    producer.output[list(producer.output).index(SCORES)] = SCORES + "_raw"
    graph.initializer.append(numpy_helper.from_array(np.array(bias, dtype=np.float32), "edgeinfer_test_bias"))
    graph.node.append(helper.make_node("Add", [SCORES + "_raw", "edgeinfer_test_bias"], [SCORES]))
    return _package(src, out, model, version)
