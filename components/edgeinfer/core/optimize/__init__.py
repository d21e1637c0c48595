"""Make models fit the edge: quantise or compile a model package, and let an agreement report decide.

``edgeinfer model optimize PKG --to TARGET --calibration FRAMES --out NEWPKG`` runs ``job.optimize_package``:
frames (``frames``) -> the target's converter (``onnx_int8``, ``onnx_fp16``, ``tflite_int8``, ``tensorrt``) ->
the original and the optimised model on held-out frames (``evaluate``) -> ``report.AgreementReport`` (and a
picture, ``plot``) -> a new package whose manifest records its lineage (``lineage``), written by ``writer``.

``build_engine`` (TensorRT) is also used on its own by ``edgeinfer model optimize ONNX --out ENGINE``.
"""

from __future__ import annotations

from ..backends.base import Precision
from .tensorrt import build_engine, cache_calibrator, write_atomic

__all__ = ["Precision", "build_engine", "cache_calibrator", "write_atomic"]
