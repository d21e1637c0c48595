"""ONNX fp16: weights and activations in half precision, inputs and outputs kept float32.

The converter is ``onnxruntime.transformers.float16.convert_float_to_float16``: the copy of
onnxconverter-common's converter that ONNX Runtime maintains and ships in its own wheel, so it needs no
extra package and follows the runtime that will execute the model (onnxconverter-common itself releases
rarely and pins old protobuf). ``keep_io_types`` leaves the package's preprocessing and decoder untouched.
fp16 pays off on GPUs (CUDA/TensorRT EPs) and ARM cores with fp16 arithmetic; on an x86 CPU ONNX Runtime
casts back and gains nothing but half the file size.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgeInferError
from ..plugins import install_hint


def tool() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} transformers.float16 (keep_io_types)"


def convert(src: Path, dst: Path) -> Path:
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise EdgeInferError(f"onnx-fp16 needs {exc.name}", install_hint(exc.name or "onnx")) from exc
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst
