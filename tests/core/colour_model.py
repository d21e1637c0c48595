"""A tiny real ONNX classifier whose answer follows the frame's colour, with a dynamic batch axis.

``logits [N, 3] = scale * mean over H, W of the RGB input``: a pure red frame is class 0, green 1, blue 2.
Built with onnx.helper and packaged like any model, so the pipeline sees a real onnxruntime session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeinfer.core.modelpkg.importer import import_model

COLOURS_BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}
LABELS = ["red", "green", "blue"]


def make_colour_model(folder: Path, size: int = 16, batch: str | int = "N", scale: float = 10.0,
                      labels: list[str] | None = None, version: str = "1.0.0") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "colour.onnx"
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, size, size])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    k = helper.make_tensor("k", TensorProto.FLOAT, [], [scale])
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
             helper.make_node("Mul", ["m", "k"], ["logits"])]
    graph = helper.make_graph(nodes, "colour", [x], [y], initializer=[axes, k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, onnx_path)
    return import_model(onnx_path, task="classification", out_dir=folder / "pkg", name="colour", version=version,
                        labels=labels or LABELS, decoder={"type": "classification", "top_k": 1})


def frame(colour: str, size: tuple[int, int] = (48, 32)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    img[:] = COLOURS_BGR[colour]
    return img
