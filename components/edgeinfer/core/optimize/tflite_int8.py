"""TFLite int8: full-integer quantisation (int8 weights, activations, inputs and outputs) by ai-edge-quantizer.

What a Coral Edge TPU needs before Google's ``edgetpu_compiler`` (not installable here: docs/optimize.md)
and what runs integer-only on ARM CPUs. The package's .tflite is first prepared as float32
(``tflite_float``), then calibrated on the package's own input tensors and quantised with the
``static_wi8_ai8`` recipe. Calibration keeps each tensor's absolute min/max over all frames
(``qsv_utils.min_max_update``), not the quantiser's default moving average (weight 0.95 on the past): with
the average, the first frames dominate and BlazeFace's score logits, negative on most frames, got a range
whose top was 0, so every face scored exactly 0.5. The int8 model's input and outputs are quantised; the
LiteRT backend quantises float feeds and dequantises outputs with their scales, so the manifest's
preprocessing and decoder stay as they are.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EdgeInferError
from ..plugins import install_hint
from .tflite_float import float32_model, signature_input

log = logging.getLogger(__name__)


def tool() -> str:
    from importlib.metadata import version

    return f"ai-edge-quantizer {version('ai-edge-quantizer')} static_wi8_ai8 (min/max calibration)"


def quantize(src: Path, dst: Path, calibration: Sequence[np.ndarray], work: Path) -> Path:
    try:
        from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
        from ai_edge_quantizer.utils import qsv_utils
    except ImportError as exc:
        raise EdgeInferError(f"tflite-int8 needs {exc.name}", install_hint(exc.name or "ai_edge_quantizer")) from exc
    prepared = float32_model(src, work / "float32.tflite")
    key, input_name = signature_input(prepared)
    recipe_doc = recipe.static_wi8_ai8()
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe_doc)
    data = {key: [{input_name: batch.astype(np.float32, copy=False)} for batch in calibration]}
    # the quantiser prints progress bars and warns about its own debug options: keep the CLI's output ours
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        calib = calibrator.Calibrator(str(prepared), num_threads=2, qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate(data, manager)
        q = quantizer.Quantizer(str(prepared), recipe_doc)
        result = q.quantize(calib.get_model_qsvs(), enable_progress_report=False)
    dst.write_bytes(bytes(result.quantized_model))
    return dst
