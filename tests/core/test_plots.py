"""Latency pictures: a readable PNG of the size asked for, every non-empty series drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeinfer.core.plots import latency_cdf


def test_latency_cdf_writes_a_png_with_one_line_per_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    out = latency_cdf({"fast": rng.gamma(4, 0.05, 500).tolist(), "slow": rng.gamma(4, 0.5, 500).tolist(),
                       "none": []}, tmp_path / "img" / "cdf.png", "test")
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (495, 880)  # 8 x 4.5 in at 110 dpi
    colours = {tuple(int(c) for c in px) for px in img.reshape(-1, 3)[::7]}
    blue, orange = (180, 119, 31), (14, 127, 255)  # matplotlib's first two line colours, BGR
    assert blue in colours and orange in colours
