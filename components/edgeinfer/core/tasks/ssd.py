"""SSD-style anchor decoding (BlazeFace / MediaPipe ``SsdAnchorsCalculator`` conventions)."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..geometry import Transform
from ..types import Detection, TaskOutput
from .base import DecoderBase, label_of, sigmoid
from .nms import nms
from .outputs import pick_output


def ssd_anchors(input_w: int, input_h: int, strides: list[int], offset: float = 0.5,
                interpolated_scale_aspect_ratio: float = 1.0) -> np.ndarray:
    """Anchor centres ``[N, 2]`` (x, y in 0..1), fixed anchor size, as MediaPipe generates them.

    Consecutive layers with the same stride share one feature map; each contributes one anchor per
    cell (two when ``interpolated_scale_aspect_ratio > 0``).
    """
    centres: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        j, repeats = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            repeats += 2 if interpolated_scale_aspect_ratio > 0.0 else 1
            j += 1
        fh, fw = -(-input_h // strides[i]), -(-input_w // strides[i])  # ceil, as MediaPipe
        ys, xs = np.meshgrid((np.arange(fh) + offset) / fh, (np.arange(fw) + offset) / fw, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, repeats, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


class SsdAnchorDecoder(DecoderBase):
    """Regressors ``[N, 4 + 2K]`` (dx, dy, w, h, keypoints) relative to anchors, plus score logits ``[N, C]``."""

    type: Literal["ssd_anchors"] = "ssd_anchors"
    task: str = "detection"
    input_width: int = Field(gt=0)
    input_height: int = Field(gt=0)
    strides: list[int] = Field(min_length=1)
    anchor_offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0
    num_keypoints: int = Field(default=0, ge=0)
    boxes_output: str = "regressors"
    scores_output: str = "classificators"
    scores_are_logits: bool = True
    score_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, gt=0)

    @cached_property
    def anchors(self) -> np.ndarray:
        return ssd_anchors(self.input_width, self.input_height, self.strides, self.anchor_offset,
                           self.interpolated_scale_aspect_ratio)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        n = len(self.anchors)
        raw = pick_output(outputs, self.boxes_output, "SSD boxes").astype(np.float32, copy=False)
        logits = pick_output(outputs, self.scores_output, "SSD scores").astype(np.float32, copy=False)
        per_box = 4 + 2 * self.num_keypoints
        # one row per anchor, exactly: a wrong stride can still divide an output evenly and decode garbage
        for arr, what, least in ((raw, "boxes", per_box), (logits, "scores", 1)):
            rows = arr.size // arr.shape[-1] if arr.ndim > 1 and arr.shape[-1] else 0
            if rows != n or arr.shape[-1] < least:
                raise ModelError(f"SSD {what} output {list(arr.shape)} does not fit {n} anchors"
                                 f"{f' x {least} values' if least > 1 else ''}",
                                 "check the decoder's strides, input size and num_keypoints against the model")
        raw, logits = raw.reshape(n, -1), logits.reshape(n, -1)
        probs = sigmoid(logits) if self.scores_are_logits else logits
        class_ids = probs.argmax(axis=1)
        scores = probs[np.arange(len(probs)), class_ids]
        idx = np.nonzero(scores >= self.score_threshold)[0]
        if idx.size == 0:
            return TaskOutput()
        a = self.anchors[idx]
        r = raw[idx]
        w_in, h_in = float(self.input_width), float(self.input_height)
        cx = a[:, 0] * w_in + r[:, 0]
        cy = a[:, 1] * h_in + r[:, 1]
        half_w, half_h = r[:, 2] / 2.0, r[:, 3] / 2.0
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        keep = nms(boxes, scores[idx], self.iou_threshold, self.max_detections)
        frame_boxes = transform.boxes_to_frame(boxes[keep])
        kps = None
        if self.num_keypoints:
            k = r[keep, 4 : 4 + 2 * self.num_keypoints].reshape(len(keep), self.num_keypoints, 2)
            k = k + (a[keep] * np.array([w_in, h_in], dtype=np.float32))[:, None, :]
            kps = transform.points_to_frame(k)
        dets = [
            Detection(
                label=label_of(labels, int(class_ids[idx[j]])),
                class_id=int(class_ids[idx[j]]),
                score=float(scores[idx[j]]),
                box=tuple(float(v) for v in frame_boxes[n]),  # type: ignore[arg-type]
                keypoints=[(float(x), float(y)) for x, y in kps[n]] if kps is not None else None,
            )
            for n, j in enumerate(keep)
        ]
        return TaskOutput(detections=dets)
