"""PP-PicoDet heads (PaddleDetection GFL/DFL): per-level class scores plus a distribution per box side.

For each stride the model emits ``scores [cells, C]`` and ``boxes [cells, 4 * (reg_max + 1)]``; cells
run row-major over a ``ceil(H / stride) x ceil(W / stride)`` grid. Each side (left, top, right,
bottom) is a distribution over ``reg_max + 1`` bins: its expectation times the stride is the
distance from the cell centre, ``(col + cell_offset, row + cell_offset) * stride``, to that side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..errors import ModelError
from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase, sigmoid, softmax
from .detections import detections_from
from .outputs import check_num_classes, pick_output, squeeze_leading

_FIX_PAIRING = "set score_outputs and box_outputs (one output name per stride) in the manifest's decoder"


@dataclass(frozen=True, slots=True)
class _Level:
    stride: int
    cols: int
    scores: np.ndarray  # [cells, C] probabilities
    dist: np.ndarray  # [cells, 4 * bins] raw bin logits


@dataclass(frozen=True, slots=True)
class _Candidates:
    level: np.ndarray  # index into the levels
    cell: np.ndarray
    score: np.ndarray
    class_id: np.ndarray


class PicoDetDecoder(DecoderBase):
    """PP-PicoDet / GFL heads: class scores and DFL box distributions, one pair of outputs per stride."""

    type: Literal["picodet"] = "picodet"
    task: str = "detection"
    input_width: int = Field(gt=0)
    input_height: int = Field(gt=0)
    strides: list[int] = Field(default_factory=lambda: [8, 16, 32, 64], min_length=1)
    #: bins per side minus one (PicoDet: 7 -> 8 bins, so box outputs have 32 columns)
    reg_max: int = Field(default=7, ge=0)
    #: score / box output names per stride, in ``strides`` order; None = pair outputs by their row counts
    score_outputs: list[str] | None = None
    box_outputs: list[str] | None = None
    #: PaddleDetection exports end the score branch with a sigmoid: the outputs are probabilities already
    scores_are_logits: bool = False
    #: cell centre = (index + cell_offset) * stride; PicoDet uses 0.5
    cell_offset: float = 0.5
    #: every class at or over the threshold is a candidate (PaddleDetection's multiclass NMS), not only the best
    multi_label: bool = False
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: candidates kept (highest scores) before boxes are decoded and NMS runs
    pre_nms_top_k: int = Field(default=1000, gt=0)
    max_detections: int = Field(default=100, gt=0)
    agnostic_nms: bool = False

    @model_validator(mode="after")
    def _outputs_per_stride(self) -> PicoDetDecoder:
        if (self.score_outputs is None) != (self.box_outputs is None):
            raise ValueError("set both score_outputs and box_outputs, or neither (pair outputs by row counts)")
        for field in ("score_outputs", "box_outputs"):
            names = getattr(self, field)
            if names is not None and len(names) != len(self.strides):
                raise ValueError(f"{field} lists {len(names)} outputs for {len(self.strides)} strides")
        return self

    @property
    def bins(self) -> int:
        return self.reg_max + 1

    def grid(self, stride: int) -> tuple[int, int]:
        """(rows, cols) of the level with ``stride``: a stride-2 conv chain rounds up."""
        return -(-self.input_height // stride), -(-self.input_width // stride)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        levels = self._levels(outputs, labels)
        cand = self._candidates(levels)
        if cand.score.size == 0:
            return TaskOutput()
        boxes = self._boxes(levels, cand)
        return detections_from(
            boxes, cand.score, cand.class_id, transform, labels, box_format="xyxy", normalized=False,
            score_threshold=self.score_threshold, iou_threshold=self.iou_threshold,
            max_detections=self.max_detections, agnostic=self.agnostic_nms,
        )

    # -- steps -------------------------------------------------------------------------------------
    def _levels(self, outputs: dict[str, np.ndarray], labels: list[str]) -> list[_Level]:
        pairs = self._pairs(outputs)
        levels: list[_Level] = []
        for stride, (score_name, box_name) in zip(self.strides, pairs, strict=True):
            rows, cols = self.grid(stride)
            scores = squeeze_leading(pick_output(outputs, score_name, "picodet scores"), 2, "picodet scores")
            dist = squeeze_leading(pick_output(outputs, box_name, "picodet boxes"), 2, "picodet boxes")
            if len(scores) != rows * cols or len(dist) != rows * cols:
                raise ModelError(f"stride {stride} expects {rows}x{cols}={rows * cols} cells, outputs {score_name!r} "
                                 f"and {box_name!r} have {len(scores)} and {len(dist)} rows",
                                 "check the decoder's input size and strides against the model")
            if dist.shape[1] != 4 * self.bins:
                raise ModelError(f"box output {box_name!r} has {dist.shape[1]} columns, expected 4 x {self.bins} "
                                 f"(reg_max {self.reg_max})", "set reg_max to columns / 4 - 1")
            scores = scores.astype(np.float32, copy=False)
            levels.append(_Level(stride, cols, sigmoid(scores) if self.scores_are_logits else scores,
                                 dist.astype(np.float32, copy=False)))
        num_classes = {lv.scores.shape[1] for lv in levels}
        if len(num_classes) != 1:
            raise ModelError(f"score outputs disagree on the number of classes: {sorted(num_classes)}", _FIX_PAIRING)
        check_num_classes(num_classes.pop(), labels, "picodet")
        return levels

    def _pairs(self, outputs: dict[str, np.ndarray]) -> list[tuple[str, str]]:
        """(score output, box output) per stride: as configured, else matched by row count and width."""
        if self.score_outputs is not None and self.box_outputs is not None:
            return list(zip(self.score_outputs, self.box_outputs, strict=True))
        by_rows: dict[int, list[str]] = {}
        for name, arr in outputs.items():
            shape = np.shape(arr)
            rows = shape[-2] if len(shape) >= 2 else -1
            by_rows.setdefault(rows, []).append(name)
        pairs: list[tuple[str, str]] = []
        for stride in self.strides:
            rows, cols = self.grid(stride)
            names = by_rows.get(rows * cols, [])
            boxes = [n for n in names if np.shape(outputs[n])[-1] == 4 * self.bins]
            scores = [n for n in names if n not in boxes]
            if len(names) != 2 or len(boxes) != 1:
                raise ModelError(f"cannot pair the stride-{stride} outputs: {len(names)} output(s) have "
                                 f"{rows * cols} rows ({names}), expected one score and one box output",
                                 _FIX_PAIRING)
            pairs.append((scores[0], boxes[0]))
        return pairs

    def _candidates(self, levels: list[_Level]) -> _Candidates:
        """Cells (or cell x class with ``multi_label``) at or over the threshold, best ``pre_nms_top_k``."""
        parts: list[tuple[np.ndarray, ...]] = []
        for i, lv in enumerate(levels):
            if self.multi_label:
                cell, cls = np.nonzero(lv.scores >= self.score_threshold)
                score = lv.scores[cell, cls]
            else:
                cls_all = lv.scores.argmax(axis=1)
                best = lv.scores[np.arange(len(lv.scores)), cls_all]
                cell = np.nonzero(best >= self.score_threshold)[0]
                cls, score = cls_all[cell], best[cell]
            parts.append((np.full(len(cell), i), cell, score, cls))
        level, cell, score, cls = (np.concatenate(col) for col in zip(*parts, strict=True))
        if len(score) > self.pre_nms_top_k:
            top = np.argsort(-score, kind="stable")[: self.pre_nms_top_k]
            level, cell, score, cls = level[top], cell[top], score[top], cls[top]
        return _Candidates(level.astype(np.int64), cell.astype(np.int64), score.astype(np.float32),
                           cls.astype(np.int64))

    def _boxes(self, levels: list[_Level], cand: _Candidates) -> np.ndarray:
        """x1, y1, x2, y2 in model-input pixels for each candidate."""
        bins = np.arange(self.bins, dtype=np.float32)
        boxes = np.empty((len(cand.score), 4), dtype=np.float32)
        for i, lv in enumerate(levels):
            sel = np.nonzero(cand.level == i)[0]
            if sel.size == 0:
                continue
            cells = cand.cell[sel]
            dist = softmax(lv.dist[cells].reshape(-1, 4, self.bins), axis=-1) @ bins * lv.stride  # [n, 4] l,t,r,b
            cx = (cells % lv.cols + self.cell_offset) * lv.stride
            cy = (cells // lv.cols + self.cell_offset) * lv.stride
            boxes[sel] = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1)
        return boxes
