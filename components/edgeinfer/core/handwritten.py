"""The loop a user writes by hand around a runtime: the yardstick `edgeinfer bench` holds the pipeline to.

Per frame: take the frame -> resize/pad, colour, normalise with OpenCV/numpy -> the runtime's own call
(``InferenceSession.run`` / LiteRT ``invoke``) -> decode with numpy. Nothing of edgeinfer runs inside the
loop: the constants (input size, mean/std, anchors, thresholds) come from the package's manifest, as a
user copies them from a model card, and are prepared once. Written plainly but not wastefully (in-place
normalisation, anchors made once, OpenCV's NMS), so a ratio against it measures edgeinfer, not a strawman.

Decoders written here: SSD anchors (the demo's BlazeFace) and classification. Another decoder type has
no hand-written loop (``hand_written_step`` returns None and the bench says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from .model import LoadedModel
from .modelpkg.manifest import InputSpec

#: one frame in, its result out: [(class_id, score, (x1, y1, x2, y2))] or [(class_id, score)] best first
Step = Callable[[np.ndarray], list[tuple[Any, ...]]]
#: frame -> (input batch, scale_x, scale_y, pad_x, pad_y)
Prep = Callable[[np.ndarray], tuple[np.ndarray, float, float, int, int]]
#: (outputs in the runtime's order, frame width, frame height, scale_x, scale_y, pad_x, pad_y) -> result
Decode = Callable[[list[np.ndarray], int, int, float, float, int, int], list[tuple[Any, ...]]]


def _preprocess(spec: InputSpec) -> Prep:
    w_in, h_in = spec.width, spec.height
    n = 1 if spec.color == "GRAY" else 3
    mean = np.array(spec.mean * (n if len(spec.mean) == 1 else 1), dtype=np.float32)
    inv_std = 1.0 / np.array(spec.std * (n if len(spec.std) == 1 else 1), dtype=np.float32)
    dtype = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}[spec.dtype]

    def prep(img: np.ndarray) -> tuple[np.ndarray, float, float, int, int]:
        h, w = img.shape[:2]
        if spec.resize == "letterbox":
            s = min(w_in / w, h_in / h)
            nw, nh = round(w * s), round(h * s)
        else:
            nw, nh = w_in, h_in
        x = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
        px, py = (w_in - nw) // 2, (h_in - nh) // 2
        if (nw, nh) != (w_in, h_in):
            x = cv2.copyMakeBorder(x, py, h_in - nh - py, px, w_in - nw - px, cv2.BORDER_CONSTANT,
                                   value=(spec.pad_value,) * 3)
        if spec.color == "RGB":
            x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
        elif spec.color == "GRAY":
            x = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[:, :, None]
        if dtype is not np.uint8:
            f: np.ndarray = x.astype(np.float32)
            f -= mean
            f *= inv_std
            x = f.astype(dtype, copy=False)
        if spec.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None]), nw / w, nh / h, px, py

    return prep


def _anchors(dec: Any) -> np.ndarray:
    """BlazeFace anchor centres in input pixels, one (or two) per cell of each stride's grid."""
    rows = []
    for stride in dict.fromkeys(dec.strides):  # equal strides share one grid
        per_cell = dec.strides.count(stride) * (2 if dec.interpolated_scale_aspect_ratio > 0 else 1)
        fh, fw = -(-dec.input_height // stride), -(-dec.input_width // stride)
        ys, xs = np.mgrid[0:fh, 0:fw]
        xy = np.stack([(xs.ravel() + dec.anchor_offset) / fw * dec.input_width,
                       (ys.ravel() + dec.anchor_offset) / fh * dec.input_height], axis=1)
        rows.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


def _ssd(dec: Any, names: list[str]) -> Decode:
    anchors = _anchors(dec)
    ib, isc = names.index(dec.boxes_output), names.index(dec.scores_output)
    k = dec.num_keypoints

    def decode(outs: list[np.ndarray], fw: int, fh: int, sx: float, sy: float, px: int,
               py: int) -> list[tuple[Any, ...]]:
        raw = outs[ib].reshape(len(anchors), -1)
        probs = outs[isc].reshape(len(anchors), -1)
        if dec.scores_are_logits:
            probs = 1.0 / (1.0 + np.exp(-np.clip(probs, -80, 80)))
        cls = probs.argmax(axis=1)
        score = probs.max(axis=1)
        idx = np.flatnonzero(score >= dec.score_threshold)
        if idx.size == 0:
            return []
        r, a = raw[idx], anchors[idx]
        xywh = np.stack([a[:, 0] + r[:, 0] - r[:, 2] / 2, a[:, 1] + r[:, 1] - r[:, 3] / 2, r[:, 2], r[:, 3]], axis=1)
        keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), score[idx].tolist(), dec.score_threshold,
                                           dec.iou_threshold, top_k=dec.max_detections), dtype=np.int64).ravel()
        out: list[tuple[Any, ...]] = []
        for j in keep:
            x, y, bw, bh = xywh[j]
            box = (float(np.clip((x - px) / sx, 0, fw)), float(np.clip((y - py) / sy, 0, fh)),
                   float(np.clip((x + bw - px) / sx, 0, fw)), float(np.clip((y + bh - py) / sy, 0, fh)))
            kps = [((float(a[j, 0] + r[j, 4 + 2 * i]) - px) / sx, (float(a[j, 1] + r[j, 5 + 2 * i]) - py) / sy)
                   for i in range(k)]
            out.append((int(cls[idx[j]]), float(score[idx[j]]), box, kps))
        return out

    return decode


def _classification(dec: Any, names: list[str]) -> Decode:
    i = names.index(dec.output) if dec.output else 0

    def decode(outs: list[np.ndarray], *_: Any) -> list[tuple[Any, ...]]:
        z: np.ndarray = outs[i].reshape(-1).astype(np.float32)
        if dec.activation == "softmax":
            e = np.exp(z - z.max())
            z = e / e.sum()
        elif dec.activation == "sigmoid":
            z = 1.0 / (1.0 + np.exp(-z))
        top = np.argsort(-z, kind="stable")[: dec.top_k]
        return [(int(c), float(z[c])) for c in top if z[c] >= dec.score_threshold]

    return decode


_DECODERS: dict[str, Callable[[Any, list[str]], Decode]] = {"ssd_anchors": _ssd, "classification": _classification}


def hand_written_step(model: LoadedModel) -> Step | None:
    """The whole hand-written frame (preprocess, runtime call, decode) on ``model``'s own runtime session
    (same threads), or None when no hand-written decoder exists for its decoder type."""
    names = [o.name for o in model.backend.outputs]
    call = model.backend.bare_call(model.input_name)
    prep = _preprocess(model.manifest.input)
    kind = getattr(model.decoder, "type", None)
    decode = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decode is None:
        return None
    dec = decode(model.decoder, names)

    def step(img: np.ndarray) -> list[tuple[Any, ...]]:
        x, sx, sy, px, py = prep(img)
        outs = call(x)
        if isinstance(outs, dict):
            outs = [outs[n] for n in names]
        return dec(outs, img.shape[1], img.shape[0], sx, sy, px, py)

    return step
