"""Synthetic ONNX graphs (onnx.helper) standing in for real models, plus a one-frame runner.

Every graph takes an NCHW float32 image batch of size 1, as a real vision model does. Detection
heads are constants tied to the input (``head + 0 * mean(image)``) so the test controls exactly what
the "model" predicts; the classifier and segmenter compute their output from the image (channel means
/ per-pixel 1x1 convolution), so what they predict follows what they are fed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.core.backends.base import BackendOptions
from edgeinfer.core.backends.onnxruntime import OnnxRuntimeBackend

OPSET = 17
IMAGE = "images"


def _image_input(input_hw: tuple[int, int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(IMAGE, TensorProto.FLOAT, [1, 3, input_hw[0], input_hw[1]])


def _save(nodes: list[onnx.NodeProto], input_hw: tuple[int, int], outputs: list[onnx.ValueInfoProto],
          initializers: list[onnx.TensorProto], path: Path, name: str) -> Path:
    graph = helper.make_graph(nodes, name, [_image_input(input_hw)], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _tied_constants(values: dict[str, np.ndarray]) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes that emit ``<name>_head = value[None] + 0 * mean(image)`` for each value."""
    nodes = [helper.make_node("ReduceMean", [IMAGE], ["image_mean"], keepdims=0),
             helper.make_node("Mul", ["image_mean", "zero"], ["image_zero"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    for name, value in values.items():
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32)[None], f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "image_zero"], [f"{name}_head"]))
    return nodes, inits


def _float_out(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def make_constant_outputs_graph(path: Path, outputs: dict[str, np.ndarray],
                                input_hw: tuple[int, int] = (64, 64)) -> Path:
    """A model whose outputs (in this order) are the given arrays with a batch axis of 1 prepended."""
    nodes, inits = _tied_constants(outputs)
    nodes += [helper.make_node("Identity", [f"{n}_head"], [n]) for n in outputs]
    outs = [_float_out(n, [1, *np.shape(v)]) for n, v in outputs.items()]
    return _save(nodes, input_hw, outs, inits, path, "constant_outputs")


def make_yolov5_graph(path: Path, rows: np.ndarray, input_hw: tuple[int, int] = (64, 64)) -> Path:
    """A YOLOv5-style model: output ``output0 [1, N, 5 + C]`` equal to ``rows``."""
    return make_constant_outputs_graph(path, {"output0": rows}, input_hw)


def make_yolov8_graph(path: Path, rows: np.ndarray, input_hw: tuple[int, int] = (64, 64),
                      transposed: bool = False) -> Path:
    """A YOLOv8-style model from ``rows [N, 4 + C]`` (cx, cy, w, h, class scores).

    The output ``output0`` is ``[1, 4 + C, N]`` made by a Transpose node, as Ultralytics exports it, or
    ``[1, N, 4 + C]`` when ``transposed``.
    """
    nodes, inits = _tied_constants({"rows": rows})
    n, c = np.shape(rows)
    if transposed:
        nodes.append(helper.make_node("Identity", ["rows_head"], ["output0"]))
        shape = [1, n, c]
    else:
        nodes.append(helper.make_node("Transpose", ["rows_head"], ["output0"], perm=[0, 2, 1]))
        shape = [1, c, n]
    return _save(nodes, input_hw, [_float_out("output0", shape)], inits, path, "yolov8")


def _conv_1x1(weights: np.ndarray, out: str, source: str) -> tuple[onnx.NodeProto, onnx.TensorProto]:
    w = np.asarray(weights, np.float32)
    init = numpy_helper.from_array(w.reshape(w.shape[0], w.shape[1], 1, 1), f"{out}_w")
    return helper.make_node("Conv", [source, f"{out}_w"], [out]), init


def make_classifier_graph(path: Path, weights: np.ndarray, input_hw: tuple[int, int] = (32, 32),
                          softmax: bool = False) -> Path:
    """``logits [1, C] = weights [C, 3] @ channel means`` (GlobalAveragePool -> 1x1 Conv -> Flatten).

    With ``softmax`` a Softmax node follows, so the output holds probabilities. The output is ``logits``.
    """
    conv, w = _conv_1x1(weights, "class_map", "pooled")
    nodes = [helper.make_node("GlobalAveragePool", [IMAGE], ["pooled"]), conv,
             helper.make_node("Flatten", ["class_map"], ["flat" if softmax else "logits"], axis=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["flat"], ["logits"], axis=1))
    out = _float_out("logits", [1, int(np.shape(weights)[0])])
    return _save(nodes, input_hw, [out], [w], path, "classifier")


def make_segmenter_graph(path: Path, weights: np.ndarray, input_hw: tuple[int, int] = (32, 32),
                         layout: str = "CHW") -> Path:
    """Per-pixel ``scores [C] = weights [C, 3] @ pixel`` (a 1x1 Conv); output ``scores`` in ``layout``.

    ``CHW`` gives ``[1, C, H, W]``; ``HWC`` adds a Transpose to ``[1, H, W, C]`` (TFLite-style).
    """
    c = int(np.shape(weights)[0])
    h, w_ = input_hw
    if layout == "CHW":
        conv, w = _conv_1x1(weights, "scores", IMAGE)
        nodes, shape = [conv], [1, c, h, w_]
    else:
        conv, w = _conv_1x1(weights, "scores_chw", IMAGE)
        nodes = [conv, helper.make_node("Transpose", ["scores_chw"], ["scores"], perm=[0, 2, 3, 1])]
        shape = [1, h, w_, c]
    return _save(nodes, input_hw, [_float_out("scores", shape)], [w], path, "segmenter")


def run_frame(path: Path, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run a graph from this module on the real ONNX Runtime backend; outputs WITHOUT the batch axis.

    ``image`` is ``[3, H, W]`` float32 (zeros of the graph's input size when None).
    """
    with OnnxRuntimeBackend(Path(path), BackendOptions()) as backend:
        if image is None:
            _, c, h, w = backend.inputs[0].shape
            image = np.zeros((c, h, w), np.float32)  # type: ignore[arg-type]
        outs = backend.run({backend.inputs[0].name: np.asarray(image, np.float32)[None]})
    return {name: value[0] for name, value in outs.items()}
