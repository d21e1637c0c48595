"""``edgeinfer model import``: a bare .onnx / .tflite / .engine -> a model package, shapes read from the model."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..backends import BackendOptions, TensorSpec, open_backend
from ..errors import ModelError
from ..tasks import DecoderConfig
from .manifest import FORMAT_BY_SUFFIX, FileEntry, InputSpec, Manifest
from .package import sha256_file, write_manifest

log = logging.getLogger(__name__)


def guess_input(spec: TensorSpec) -> dict[str, Any]:
    shape = spec.shape
    if len(shape) != 4:
        raise ModelError(f"input {spec.name!r} has shape {list(shape)}; edgeinfer feeds images [N, C, H, W] or "
                         "[N, H, W, C]", "export the model with a 4-D image input")
    if shape[1] in (1, 3) and not (shape[3] in (1, 3) and shape[1] == shape[2]):
        layout, c, h, w = "NCHW", shape[1], shape[2], shape[3]
    elif shape[3] in (1, 3):
        layout, h, w, c = "NHWC", shape[1], shape[2], shape[3]
    else:
        raise ModelError(f"cannot tell the channel axis of input shape {list(shape)}",
                         "pass --layout NCHW|NHWC and --size WxH")
    if not isinstance(h, int) or not isinstance(w, int):
        raise ModelError(f"input {spec.name!r} has dynamic height/width {list(shape)}", "pass --size WxH")
    dtype = spec.dtype if spec.dtype in ("float32", "float16", "uint8", "int8") else "float32"
    out: dict[str, Any] = {"name": spec.name, "layout": layout, "width": w, "height": h,
                           "color": "GRAY" if c == 1 else "RGB", "dtype": dtype}
    if dtype == "uint8":
        out.update(mean=[0.0], std=[1.0])
    b = shape[0]
    out["batch"] = b if isinstance(b, int) and b > 0 else 8
    return out


def guess_decoder(task: str, outputs: list[TensorSpec]) -> dict[str, Any]:
    """A sensible decoder for the output shapes; anything odd needs --decoder FILE."""
    if task == "classification":
        return {"type": "classification", "output": outputs[0].name}
    if task == "segmentation":
        s = outputs[0].shape
        layout = "HWC" if len(s) == 4 and isinstance(s[3], int) and isinstance(s[1], int) and s[3] < s[1] else "CHW"
        c = s[1] if layout == "CHW" and len(s) == 4 else (s[-1] if len(s) == 4 else 1)
        return {"type": "segmentation", "output": outputs[0].name, "layout": layout,
                "activation": "argmax" if isinstance(c, int) and c >= 2 else "sigmoid"}
    names = {o.name.lower(): o.name for o in outputs}
    if "boxes" in names and "scores" in names:
        d: dict[str, Any] = {"type": "boxes_scores", "boxes_output": names["boxes"], "scores_output": names["scores"]}
        if "classes" in names:
            d["classes_output"] = names["classes"]
        return d
    if len(outputs) == 1 and len(outputs[0].shape) == 3:
        a, b = outputs[0].shape[1], outputs[0].shape[2]
        if isinstance(a, int) and isinstance(b, int):
            return {"type": "yolov8" if a < b else "yolov5", "output": outputs[0].name}
    raise ModelError(f"cannot guess a detection decoder for outputs {[(o.name, list(o.shape)) for o in outputs]}",
                     "pass --decoder FILE.yaml with the decoder block (see docs/model-packages.md)")


def import_model(model_file: Path, task: str, out_dir: Path, name: str | None = None, version: str = "1.0.0",
                 labels: list[str] | None = None, decoder: dict[str, Any] | None = None,
                 input_overrides: dict[str, Any] | None = None, source: dict[str, str] | None = None) -> Path:
    """Write a package folder at ``out_dir`` (replaced atomically) and return it."""
    model_file = Path(model_file)
    if not model_file.is_file():
        raise ModelError(f"model file {model_file} does not exist", "check the path")
    fmt = FORMAT_BY_SUFFIX.get(model_file.suffix.lower())
    if fmt is None:
        raise ModelError(f"unknown model format {model_file.suffix!r}",
                         f"use one of {', '.join(sorted(FORMAT_BY_SUFFIX))}")
    with open_backend(model_file, fmt, BackendOptions(device="cpu" if fmt != "tensorrt" else None)) as backend:
        inp = guess_input(backend.inputs[0])
        outputs = list(backend.outputs)
    inp.update(input_overrides or {})
    dec = dict(decoder) if decoder else guess_decoder(task, outputs)
    try:
        TypeAdapter(DecoderConfig).validate_python(dec)
        spec = InputSpec.model_validate(inp)
    except ValidationError as exc:
        from ..config import one_line

        raise ModelError(f"invalid decoder or input settings: {one_line(exc)}", "fix --decoder / input flags") from exc
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    try:
        target_name = f"model{model_file.suffix.lower()}"
        shutil.copyfile(model_file, tmp / target_name)
        files = [FileEntry(path=target_name, sha256=sha256_file(tmp / target_name),
                           size=(tmp / target_name).stat().st_size)]
        manifest = Manifest(
            name=name or _safe_name(model_file.stem), version=version, task=task, format=fmt,  # type: ignore[arg-type]
            model_file=target_name, files=files, input=spec, outputs=[o.name for o in outputs],
            decoder=dec,  # type: ignore[arg-type]  # pydantic validates the dict into a decoder
            labels=labels or [], source=source or {"imported_from": model_file.name},
        )
        write_manifest(manifest, tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("imported %s as package %s", model_file, out_dir)
    return out_dir


def _safe_name(stem: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-._")
    return (cleaned or "model")[:64]
