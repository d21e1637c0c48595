"""Real .tflite variants made from the real BlazeFace model, by editing its flatbuffer (no TensorFlow).

- ``float32_model``: the product's own (``edgeinfer.core.optimize.tflite_float``): BlazeFace with its fp16
  weights stored as fp32 constants, current op codes and a ``serving_default`` signature, as ai-edge-quantizer
  needs it.
- ``int8_model``: a full-integer int8 model (int8 input and outputs), made by ai-edge-quantizer.
- ``dynamic_batch_model``: the input's batch dim is -1 and the RESHAPE ops follow it.
- ``edgetpu_stub_model``: one ``edgetpu-custom-op`` node, as edgetpu_compiler leaves it (runs only on a TPU).
- ``noop_delegate``: a C delegate plugin that claims no nodes, standing in for libedgetpu's loadable side.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.tools import flatbuffer_utils as fbu

from edgeinfer.core.optimize.tflite_float import float32_model

__all__ = ["float32_model"]


def _save(model: fb.ModelT, path: Path) -> Path:
    path.write_bytes(bytes(fbu.convert_object_to_bytearray(model)))
    return path


def int8_model(float32_path: Path, dst: Path, frames: Iterable[np.ndarray]) -> Path:
    """Static int8 weights and activations, calibrated on ``frames`` (NHWC float32 in [-1, 1])."""
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(float32_path), recipe.static_wi8_ai8())
    data = {"serving_default": [{"input": f} for f in frames]}
    result = q.quantize(q.calibrate(data, num_threads=2), enable_progress_report=False)
    dst.write_bytes(bytes(result.quantized_model))
    return dst


def dynamic_batch_model(src: Path, dst: Path) -> Path:
    model = fbu.read_model(str(src))
    graph = model.subgraphs[0]
    for tensor in graph.tensors:
        if tensor.shape is not None and len(tensor.shape) and tensor.shape[0] == 1 \
                and model.buffers[tensor.buffer].data is None:
            tensor.shapeSignature = [-1, *tensor.shape[1:]]
    for op in graph.operators:
        if fbu.opcode_to_name(model, op.opcodeIndex) == "RESHAPE":
            op.builtinOptions.newShape = [-1, *graph.tensors[op.outputs[0]].shape[1:]]
    return _save(model, dst)


def edgetpu_stub_model(src: Path, dst: Path) -> Path:
    model = fbu.read_model(str(src))
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
    code.customCode = "edgetpu-custom-op"
    code.version = 1
    model.operatorCodes.append(code)
    graph = model.subgraphs[0]
    op = fb.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs, op.outputs = list(graph.inputs), list(graph.outputs)
    op.customOptions = np.zeros(4, np.uint8)
    graph.operators = [op]
    return _save(model, dst)


NOOP_DELEGATE_C = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* TfLiteDelegate: data_, Prepare, CopyFromBufferHandle, CopyToBufferHandle, FreeBufferHandle, flags, ... */
typedef struct { void* data; int (*prepare)(void*, void*); void* rest[3]; int64_t flags; void* more[8]; } Delegate;
static int prepare(void* context, void* delegate) { (void)context; (void)delegate; return 0; }
void* tflite_plugin_create_delegate(char** keys, char** values, int n, void (*report)(const char*)) {
  for (int i = 0; i < n; i++)
    if (strcmp(keys[i], "device") == 0 && strcmp(values[i], "none") == 0) { report("no device"); return NULL; }
  Delegate* d = calloc(1, sizeof(Delegate));
  d->prepare = prepare;
  return d;
}
void tflite_plugin_destroy_delegate(void* d) { free(d); }
"""


def noop_delegate(folder: Path) -> Path | None:
    """Build the stand-in delegate; None when there is no C compiler. ``{"device": "none"}`` makes it fail."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    source, lib = folder / "noop_delegate.c", folder / "libnoop_delegate.so"
    source.write_text(NOOP_DELEGATE_C)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(source)], check=True, capture_output=True)
    return lib
