"""``edgeinfer model optimize PKG --to TARGET``: frames -> optimised model -> agreement report -> new package."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..backends import BackendOptions
from ..backends.base import Precision
from ..errors import ConfigError, EdgeInferError, ModelError
from ..model import LoadedModel, load_model
from ..modelpkg import ModelPackage, load_package
from ..modelpkg.manifest import ModelFormat
from ..progress import Progress, no_progress
from . import frames as framesmod
from .evaluate import evaluate_pair
from .lineage import Lineage
from .report import AgreementReport, Side, Thresholds, build_report
from .writer import PICTURE_NAME, check_out, write_package

log = logging.getLogger(__name__)

Target = Literal["onnx-int8", "onnx-fp16", "tflite-int8", "tensorrt-fp16", "tensorrt-int8"]
TARGETS: tuple[str, ...] = ("onnx-int8", "onnx-fp16", "tflite-int8", "tensorrt-fp16", "tensorrt-int8")
#: target -> (source format it needs, format it makes, file suffix, calibrated)
_TARGETS: dict[str, tuple[ModelFormat, ModelFormat, str, bool]] = {
    "onnx-int8": ("onnx", "onnx", ".onnx", True), "onnx-fp16": ("onnx", "onnx", ".onnx", False),
    "tflite-int8": ("tflite", "tflite", ".tflite", True),
    "tensorrt-fp16": ("onnx", "tensorrt", ".engine", False), "tensorrt-int8": ("onnx", "tensorrt", ".engine", True)}


class OptimizeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Target
    calibration: str | None = Field(default=None, description="Frames to calibrate on (folder, image, video)")
    heldout: str | None = Field(default=None, description="Frames for the report (default: every 4th calibration "
                                "frame, held out of calibration)")
    max_frames: int = Field(default=200, ge=1, le=100_000, description="Frames read from each set at most")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    accept_below: bool = False
    name: str | None = None
    version: str | None = None
    repeats: int = Field(default=3, ge=0, le=100, description="Timing passes over the held-out frames")
    picture: bool = True


@dataclass(frozen=True)
class OptimizeOutcome:
    package: Path
    report: AgreementReport
    picture: Path | None


def optimize_package(source: Path, out: Path, options: OptimizeOptions, progress: Progress = no_progress,
                     sign: Callable[[Path], object] | None = None) -> OptimizeOutcome:
    """Optimise ``source`` into the new package ``out`` (written even when rejected: its lineage says so).
    ``sign`` signs the written package folder when signing is configured."""
    src_fmt, fmt, suffix, calibrated = _TARGETS[options.target]
    check_out(out)
    pkg = load_package(source)
    m = pkg.manifest
    if m.encryption is not None:
        raise ModelError(f"{source} is encrypted", "optimise the clear package, then encrypt the result "
                         "(`edgeinfer model encrypt`)")
    if m.format != src_fmt:
        hint = ("optimise the package's TFLite twin (the demo ships one), or convert the model to .tflite first"
                if src_fmt == "tflite" else f"--to {options.target} starts from an ONNX package")
        raise ConfigError(f"--to {options.target} needs a {src_fmt} package, {source} is {m.format}", hint)
    if options.calibration is None and (calibrated or options.heldout is None):
        raise ConfigError(f"--to {options.target} needs frames", "pass --calibration FRAMES (a folder, image or "
                          "video of what the camera sees)" + ("" if calibrated else ", or --heldout FRAMES"))
    progress("reading frames")
    calib_set = framesmod.read_frames(options.calibration, options.max_frames, "calibration") \
        if options.calibration else None
    held_set = framesmod.read_frames(options.heldout, options.max_frames, "heldout") if options.heldout else None
    if calibrated:
        assert calib_set is not None
        calib_set, held_set = framesmod.split(calib_set, held_set)
    else:  # nothing is calibrated: every frame can judge
        held_set, calib_set = held_set or calib_set, None
    assert held_set is not None
    original = load_model(pkg, BackendOptions())
    try:
        with tempfile.TemporaryDirectory(prefix="edgeinfer-optimize-") as tmp:
            work = Path(tmp)
            calibration = framesmod.tensors(calib_set, original.preprocessor) if calib_set is not None else []
            progress(f"building {options.target}")
            made, files, tool = _build(options.target, pkg, original, calibration, work, suffix, progress)
            report = _judge(options, pkg, original, made, fmt, held_set, len(calibration), progress)
            lineage = Lineage(from_package=f"{m.name} {m.version}", from_sha256=pkg.model_sha256,
                              method=options.target, tool=tool, calibration_sha256=calib_set.sha256 if
                              calib_set is not None else None, calibration_frames=len(calibration),
                              heldout_sha256=held_set.sha256, agreement=report.agreement, verdict=report.verdict)
            progress("writing the package")
            written = write_package(source=pkg, out=out, files=files, model_name=made.name, fmt=fmt,
                                    name=options.name or _name(m.name, options.target),
                                    version=options.version or m.version, lineage=lineage, report=report,
                                    picture=options.picture)
    finally:
        original.close()
    if sign is not None:
        sign(written)
    picture = written / PICTURE_NAME
    return OptimizeOutcome(written, report, picture if picture.is_file() else None)


def _name(name: str, target: str) -> str:
    suffix = "-" + target
    return name[: 64 - len(suffix)] + suffix


def _build(target: str, pkg: ModelPackage, original: LoadedModel, calibration: list, work: Path, suffix: str,
           progress: Progress) -> tuple[Path, dict[str, Path], str]:
    """(model file made, package files, tool line)."""
    made = work / f"model{suffix}"
    if target == "onnx-int8":
        from . import onnx_int8

        onnx_int8.quantize(pkg.model_path, made, original.input_name, calibration, work)
        return made, {made.name: made}, onnx_int8.tool()
    if target == "onnx-fp16":
        from . import onnx_fp16

        onnx_fp16.convert(pkg.model_path, made)
        return made, {made.name: made}, onnx_fp16.tool()
    if target == "tflite-int8":
        from . import tflite_int8

        tflite_int8.quantize(pkg.model_path, made, calibration, work)
        return made, {made.name: made}, tflite_int8.tool()
    from ..backends.tensorrt import META_SUFFIX, import_tensorrt
    from .tensorrt import build_engine
    from .trt_calibrator import CACHE_SUFFIX

    precision: Precision = "int8" if target == "tensorrt-int8" else "fp16"
    build_engine(pkg.model_path, made, precision, calibration=calibration or None, progress=progress)
    files = {p.name: p for p in (made, Path(str(made) + META_SUFFIX), Path(str(made) + CACHE_SUFFIX)) if p.is_file()}
    return made, files, f"tensorrt {import_tensorrt().__version__} ({precision})"


def _judge(options: OptimizeOptions, pkg: ModelPackage, original: LoadedModel, made: Path, fmt: ModelFormat,
           held: framesmod.FrameSet, calibration_frames: int, progress: Progress) -> AgreementReport:
    """Load the made model behind the source's own preprocessing and decoder, and compare."""
    candidate_pkg = ModelPackage(made.parent, pkg.manifest.model_copy(update={"format": fmt,
                                                                               "model_file": made.name}))
    try:
        candidate = load_model(candidate_pkg, BackendOptions())
    except EdgeInferError as exc:
        raise ModelError(f"the {options.target} model does not load: {exc.problem}",
                         exc.fix or "report this with the source package") from exc
    try:
        runs = evaluate_pair(original, candidate, held, options.repeats, progress)
    finally:
        candidate.close()
    return build_report(target=options.target, task=pkg.manifest.task, original=runs[0], optimized=runs[1],
                        original_side=Side(file=pkg.manifest.model_file, size_bytes=pkg.model_path.stat().st_size,
                                           latency_ms_p50=_round(runs[0].p50_ms)),
                        optimized_side=Side(file=made.name, size_bytes=made.stat().st_size,
                                            latency_ms_p50=_round(runs[1].p50_ms)),
                        calibration_frames=calibration_frames, thresholds=options.thresholds,
                        accept_below=options.accept_below)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
