"""The model package manifest schema (``manifest.yaml``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..tasks import DecoderConfig
from .encryption import ModelEncryption

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
ModelFormat = Literal["onnx", "tflite", "tensorrt"]
FORMAT_BY_SUFFIX: dict[str, ModelFormat] = {
    ".onnx": "onnx", ".tflite": "tflite", ".engine": "tensorrt", ".plan": "tensorrt", ".trt": "tensorrt",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileEntry(_Strict):
    path: str = Field(description="Path inside the package, forward slashes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        if v.startswith("/") or ".." in v.split("/"):
            raise ValueError(f"file path {v!r} must be relative and stay inside the package")
        return v


class InputSpec(_Strict):
    """How a frame becomes the model's input tensor."""

    name: str | None = Field(default=None, description="Input tensor name; None = the model's first input")
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    resize: Literal["letterbox", "stretch"] = "letterbox"
    pad_value: int = Field(default=0, ge=0, le=255)
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0],
                              description="Subtracted per channel, in 0..255 pixel units")
    std: list[float] = Field(default_factory=lambda: [255.0, 255.0, 255.0],
                             description="Divisor per channel, in 0..255 pixel units")
    dtype: Literal["float32", "float16", "uint8", "int8"] = "float32"
    batch: int = Field(default=1, ge=1, description="Largest batch the model accepts (1 = fixed batch of one)")

    @property
    def channels(self) -> int:
        return 1 if self.color == "GRAY" else 3

    @model_validator(mode="after")
    def _norm_lengths(self) -> InputSpec:
        for field in ("mean", "std"):
            vals = getattr(self, field)
            if len(vals) not in (1, self.channels):
                raise ValueError(f"input.{field} needs 1 or {self.channels} values, got {len(vals)}")
        if any(s == 0 for s in self.std):
            raise ValueError("input.std must not contain 0")
        return self


class Manifest(_Strict):
    schema_version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    version: str
    task: Literal["detection", "classification", "segmentation"]
    format: ModelFormat
    model_file: str = Field(description="The model file, one of files[].path")
    files: list[FileEntry] = Field(min_length=1)
    input: InputSpec
    outputs: list[str] = Field(default_factory=list, description="Output tensor names, in model order")
    decoder: DecoderConfig
    labels: list[str] = Field(default_factory=list)
    source: dict[str, str] = Field(default_factory=dict, description="Provenance: where the model came from")
    encryption: ModelEncryption | None = Field(default=None, description="Set when model_file is encrypted "
                                               "(`edgeinfer model encrypt`); None = clear")

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not SEMVER.match(v):
            raise ValueError(f"version {v!r} is not semantic versioning (MAJOR.MINOR.PATCH)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        paths = [f.path for f in self.files]
        if self.model_file not in paths:
            raise ValueError(f"model_file {self.model_file!r} is not listed in files")
        if len(set(paths)) != len(paths):
            raise ValueError("files lists the same path twice")
        if self.decoder.task != self.task:
            raise ValueError(f"decoder {self.decoder.type!r} decodes {self.decoder.task}, but task is {self.task}")
        return self

    def file(self, path: str) -> FileEntry:
        return next(f for f in self.files if f.path == path)
