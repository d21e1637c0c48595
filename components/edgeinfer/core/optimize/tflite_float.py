"""A .tflite as ai-edge-quantizer wants it: float32 weights, current op codes and a ``serving_default`` signature.

Models such as MediaPipe's BlazeFace store their weights as fp16 constants feeding DEQUANTIZE ops. The
quantiser calibrates float32 graphs, so each such constant is widened to float32 in place of the DEQUANTIZE
op's output, the op is dropped, and the fp16 tensors and buffers nobody references any more are removed
(else the int8 file would carry them). Old files keep an op's code only in ``deprecatedBuiltinCode``; it is
copied to ``builtinCode``. A model without signatures gets one over its graph inputs and outputs. Only the
flatbuffer schema and tools that ship with ai-edge-litert are used: no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SIGNATURE = "serving_default"


def float32_model(src: Path, dst: Path) -> Path:
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model(str(src))
    for code in model.operatorCodes:
        code.builtinCode = fbu.get_builtin_code_from_operator_code(code)
    for graph in model.subgraphs:
        kept = []
        for op in graph.operators:
            source = graph.tensors[op.inputs[0]] if op.inputs is not None and len(op.inputs) else None
            if (source is not None and fbu.opcode_to_name(model, op.opcodeIndex) == "DEQUANTIZE"
                    and source.type == fb.TensorType.FLOAT16 and model.buffers[source.buffer].data is not None):
                weights = np.frombuffer(bytes(model.buffers[source.buffer].data), np.float16).astype(np.float32)
                buffer = fb.BufferT()
                buffer.data = np.frombuffer(weights.tobytes(), np.uint8)
                model.buffers.append(buffer)
                graph.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
            else:
                kept.append(op)
        graph.operators = kept
        _drop_unused_tensors(graph)
    _drop_unused_buffers(model)
    if not model.signatureDefs:
        graph = model.subgraphs[0]

        def tensor_map(i: int) -> Any:
            return fb.TensorMapT(name=graph.tensors[i].name, tensorIndex=i)

        model.signatureDefs = [fb.SignatureDefT(inputs=[tensor_map(i) for i in graph.inputs],
                                                outputs=[tensor_map(i) for i in graph.outputs],
                                                signatureKey=SIGNATURE, subgraphIndex=0)]
    dst.write_bytes(bytes(fbu.convert_object_to_bytearray(model)))
    return dst


def _drop_unused_tensors(graph: Any) -> None:
    """Remove tensors no op, graph input or output names (the fp16 weights); renumber the references."""
    used = set(graph.inputs) | set(graph.outputs)
    for op in graph.operators:
        used.update(i for i in list(op.inputs) + list(op.outputs) if i >= 0)
    order = sorted(used)
    new_index = {old: new for new, old in enumerate(order)}
    graph.tensors = [graph.tensors[i] for i in order]
    graph.inputs = [new_index[i] for i in graph.inputs]
    graph.outputs = [new_index[i] for i in graph.outputs]
    for op in graph.operators:
        op.inputs = [new_index[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [new_index[i] for i in op.outputs]


def _drop_unused_buffers(model: Any) -> None:
    """Keep buffer 0 (the empty sentinel) and those a tensor or metadata entry references; renumber."""
    used = {0}
    for graph in model.subgraphs:
        used.update(t.buffer for t in graph.tensors)
    used.update(m.buffer for m in model.metadata or [])
    order = sorted(used)
    new_index = {old: new for new, old in enumerate(order)}
    model.buffers = [model.buffers[i] for i in order]
    for graph in model.subgraphs:
        for t in graph.tensors:
            t.buffer = new_index[t.buffer]
    for m in model.metadata or []:
        m.buffer = new_index[m.buffer]


def signature_input(path: Path) -> tuple[str, str]:
    """(signature key, its first input's name) of a prepared model."""
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(path)).get_signature_list()
    key = SIGNATURE if SIGNATURE in signatures else next(iter(signatures))
    return key, signatures[key]["inputs"][0]
