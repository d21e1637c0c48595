"""THE config schema: one pydantic model for the CLI/config file, the Greengrass component
configuration (the recipe's DefaultConfiguration is generated from it) and the IoT Edge module
twin's desired properties.

A bad update is rejected with a one-line reason and the running config stays: see ``apply_patch``.
"""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import scope
from .backends.base import BackendOptions
from .captures.config import CapturesConfig
from .errors import ConfigError
from .fallback.config import FallbackConfig
from .modelpkg.trustconfig import TrustConfig
from .probation import ProbationConfig
from .remoteconfig import RemotePolicy
from .rules.config import CommandAction, HookConfig, RuleConfig
from .serve.config import ServeConfig
from .shadow import ShadowConfig
from .streams.config import MAX_STREAMS, SourceConfig, StreamConfig, unique_ids
from .telemetry.config import TelemetryConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelConfig(_Section):
    path: str | None = Field(default=None, description="Model package (folder or .zip) or a bare .onnx/.tflite/"
                             ".engine file; None = the embedded demo model",
                             json_schema_extra=scope.checked("model_path"))
    task: Literal["detection", "classification", "segmentation"] | None = Field(
        default=None, description="Task of a bare model file (packages carry their own)")
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0,
                                          description="Overrides the package decoder's score threshold (0 to 1)")
    warmup_runs: int = Field(default=2, ge=0, le=1000,
                             description="Inferences on a blank frame before the first real one")


class PipelineConfig(_Section):
    mode: Literal["pipelined", "sequential"] = Field(
        default="pipelined", description="pipelined: stages overlap in threads; sequential: one frame at a time")
    queue_size: int = Field(default=4, ge=1, le=1024, description="Bound of each inter-stage queue")
    max_batch: int = Field(default=1, ge=1, le=256, description="Largest batch when the model has a batch dim")
    max_wait_ms: float = Field(default=2.0, ge=0, le=1000,
                               description="How long a partial batch waits for more frames (at most 1 s: longer "
                               "stalls a live stream)")
    preprocess_threads: int = Field(default=1, ge=1, le=16)


class OutputConfig(_Section):
    dir: str | None = Field(default=None, description="Write results.jsonl, annotated frames and summary.json here",
                            json_schema_extra=scope.local())
    annotate: bool = Field(default=True, description="Write annotated frames (boxes, labels, scores)")
    annotate_every: int = Field(default=1, ge=1, le=1_000_000, description="Annotate every Nth frame of a stream")
    print_detections: bool = Field(default=True, description="CLI: print each detection as it happens")
    results_max_bytes: int = Field(default=64 * 1024 * 1024, ge=4096, le=1 << 40,
                                   description="results.jsonl is rotated (results.jsonl.1 ...) at this size")
    results_keep: int = Field(default=2, ge=0, le=100, description="Rotated results files kept beside the live one")
    annotated_max_files: int = Field(default=1000, ge=1, le=10_000_000,
                                     description="Annotated frames kept; the oldest are removed beyond this")
    annotated_max_bytes: int = Field(default=256 * 1024 * 1024, ge=65_536, le=1 << 40,
                                     description="Bytes of annotated frames kept; the oldest are removed beyond this")


class EdgeInferConfig(_Section):
    """Everything `edgeinfer run`, the Greengrass component and the IoT Edge module are configured by."""

    device_id: str = Field(default_factory=lambda: os.environ.get("EDGEINFER_DEVICE_ID") or socket.gethostname(),
                           description="Device name in telemetry (Greengrass: the thing name; IoT Edge: device id)",
                           json_schema_extra=scope.local())
    component: str = Field(default="edgeinfer", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                           description="The Greengrass component this runs as (set by the component), for the "
                           "{component} level of telemetry.topic", json_schema_extra=scope.local())
    state_dir: str | None = Field(default=None, description="Outbox, sequence numbers and caches "
                                  "(default $EDGEINFER_STATE_DIR or ~/.local/state/edgeinfer)",
                                  json_schema_extra=scope.local())
    model: ModelConfig = Field(default_factory=ModelConfig)
    source: SourceConfig = Field(default_factory=SourceConfig, description="One stream (the shorthand of sources:)")
    sources: list[StreamConfig] = Field(default_factory=list, max_length=MAX_STREAMS,
                                        description="Several streams through one model session, each with its own "
                                        "id; instead of source:")
    backend: BackendOptions = Field(default_factory=BackendOptions)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    probation: ProbationConfig = Field(default_factory=ProbationConfig,
                                       description="The health gate: every model switch is judged against the "
                                       "model it replaced, and rolled back on a breach")
    shadow: ShadowConfig = Field(default_factory=ShadowConfig,
                                 description="Shadow A/B: a candidate model measured beside the active one")
    fallback: FallbackConfig = Field(default_factory=FallbackConfig,
                                     description="Cloud fallback for frames the local model is unsure of")
    captures: CapturesConfig = Field(default_factory=CapturesConfig,
                                     description="The data loop: frames kept and uploaded for labelling")
    hooks: dict[str, HookConfig] = Field(default_factory=dict, max_length=256, json_schema_extra=scope.local(),
                                         description="Programs rules' command actions may run, by name")
    remote: RemotePolicy = Field(default_factory=RemotePolicy, json_schema_extra=scope.local(),
                                 description="What a deployment or twin may point the device at")
    trust: TrustConfig = Field(default_factory=TrustConfig, json_schema_extra=scope.local(),
                               description="Which model packages the device accepts (signing, encryption)")
    serve: ServeConfig = Field(default_factory=ServeConfig, json_schema_extra=scope.local(),
                               description="The device's HTTP endpoints: /metrics, /healthz, /readyz, status page")
    max_frames: int | None = Field(default=None, ge=1, le=10**12,
                                   description="Stop after this many frames (1 to 10^12)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _hooks_exist(self) -> EdgeInferConfig:
        lists = [("rules", self.rules)] + [(f"sources[{k}].rules", s.rules) for k, s in enumerate(self.sources)
                                          if s.rules]
        for where, rules in lists:
            for i, rule in enumerate(rules):
                for j, action in enumerate(rule.actions):
                    if isinstance(action, CommandAction) and action.hook not in self.hooks:
                        raise ValueError(f"{where}[{i}].actions[{j}].hook: no hook named {action.hook!r} is defined "
                                         "(the device's local settings define hooks: {NAME: {argv: [...]}})")
        return self

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> EdgeInferConfig:
        if self.sources and self.source.uri is not None:
            raise ValueError("sources: and source.uri are both set: use source: for one stream or sources: for "
                             "several, not both")
        unique_ids(self.sources)
        return self

    def resolved_state_dir(self) -> Path:
        return state_dir(self.state_dir)


def state_dir(explicit: str | None = None) -> Path:
    """``explicit`` > $EDGEINFER_STATE_DIR > $XDG_STATE_HOME/edgeinfer > ~/.local/state/edgeinfer."""
    if explicit:
        return Path(explicit).expanduser()
    if env := os.environ.get("EDGEINFER_STATE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edgeinfer"


def cache_dir() -> Path:
    """Downloaded and converted models: $EDGEINFER_CACHE_DIR > $XDG_CACHE_HOME/edgeinfer > ~/.cache/edgeinfer."""
    if env := os.environ.get("EDGEINFER_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeinfer"


def one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: ``where: what`` for each problem."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(msg if where == "(root)" and ": " in msg else f"{where}: {msg}")
    return "; ".join(parts)


def validate(data: dict[str, Any], what: str = "config") -> EdgeInferConfig:
    try:
        return EdgeInferConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {one_line(exc)}", "fix the keys named (see docs/configuration.md)") from exc


def load_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}", "pass an existing YAML or JSON file") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML/JSON: {str(exc).splitlines()[0]}",
                          "fix the syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level", "write key: value pairs")
    return data


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON-merge-patch style: dicts merge recursively, ``None`` deletes a key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_patch(current: EdgeInferConfig, patch: dict[str, Any], what: str = "config update") -> EdgeInferConfig:
    """Validate ``current`` + ``patch`` as a whole. Raises ConfigError (and changes nothing) when invalid."""
    merged = deep_merge(current.model_dump(mode="json"), patch)
    return validate(merged, what)


def defaults_json() -> dict[str, Any]:
    """The default configuration as plain JSON (recipe DefaultConfiguration, twin desired properties): what a
    deployment may set, so without the local-only sections (hooks, remote, trust, serve, state_dir, output.dir)."""
    cfg = EdgeInferConfig(device_id="{iot:thingName}")
    return cfg.model_dump(mode="json", exclude=scope.local_exclude(EdgeInferConfig))


def json_schema() -> dict[str, Any]:
    return EdgeInferConfig.model_json_schema()
