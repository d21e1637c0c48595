"""ONNX int8: ONNX Runtime's static quantisation, QDQ format, calibrated on the package's own input tensors.

Steps: the graph is lifted to opset 13 when older (per-channel weight scales need DequantizeLinear's
``axis``, opset 13), ``quant_pre_process`` infers shapes and folds what it can (it needs sympy), then
``quantize_static`` with per-channel int8 weights, int8 activations and min/max calibration. QDQ keeps the
graph portable: every ONNX Runtime execution provider reads it, and TensorRT builds int8 from its Q/DQ nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import EdgeInferError
from ..plugins import install_hint

log = logging.getLogger(__name__)
MIN_OPSET = 13


def tool() -> str:
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} quantize_static (QDQ, per-channel int8 weights, int8 activations)"


def quantize(src: Path, dst: Path, input_name: str, calibration: Sequence[np.ndarray], work: Path) -> Path:
    try:
        import onnx
        from onnx import version_converter
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise EdgeInferError(f"onnx-int8 needs {exc.name}", install_hint(exc.name or "onnx")) from exc
    model = onnx.load(str(src))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    lifted = work / "lifted.onnx"
    if opset < MIN_OPSET:
        log.info("lifting %s from opset %d to %d for per-channel quantisation", src.name, opset, MIN_OPSET)
        model = version_converter.convert_version(model, MIN_OPSET)
    onnx.save(model, str(lifted))
    prepared = work / "prepared.onnx"
    try:
        quant_pre_process(str(lifted), str(prepared), skip_symbolic_shape=False)
    except ImportError as exc:  # sympy, for the symbolic shape inference
        raise EdgeInferError(f"onnx-int8 needs {exc.name}", install_hint(exc.name or "sympy")) from exc

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {input_name: batch.astype(np.float32, copy=False)}

    quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return dst
