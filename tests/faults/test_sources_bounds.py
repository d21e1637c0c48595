"""Input bounds and re-iteration for file sources: image headers checked before decoding, empty and
corrupt images counted as bad, synthetic sizes bounded, malformed URIs refused at once, and a source
iterated again from the start after a cancel."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from edgeinfer.core.errors import SourceError
from edgeinfer.core.sources import (
    MAX_IMAGE_PIXELS,
    POLL_S,
    ChainSource,
    FolderSource,
    SyntheticSource,
    image_size,
    open_source,
)


def huge_png(path: Path, width: int, height: int) -> None:
    """A real, valid grayscale PNG of width x height zeros (compresses to ~0.4 MB for 20000x20000)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp, row = zlib.compressobj(9), b"\x00" * (width + 1)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_huge_image_is_skipped_from_its_header_without_decoding(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    huge_png(tmp_path / "a_huge.png", 20000, 20000)  # decoded, this is 400 MB (cv2.imread peaks at ~850 MB)
    cv2.imwrite(str(tmp_path / "b_ok.png"), np.full((48, 64, 3), 128, np.uint8))
    assert image_size(tmp_path / "a_huge.png") == (20000, 20000)
    rss = psutil.Process().memory_info().rss
    src = FolderSource(tmp_path)
    frames = list(src)
    grew_mb = (psutil.Process().memory_info().rss - rss) / 1e6
    assert [Path(f.source).name for f in frames] == ["b_ok.png"] and src.bad == 1
    assert grew_mb < 50, f"RSS grew {grew_mb:.0f} MB: the image was decoded"
    assert any("400 megapixels" in r.getMessage() and "MAX_IMAGE_PIXELS" in r.getMessage() for r in caplog.records)
    assert MAX_IMAGE_PIXELS == 50_000_000


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".pgm"])
def test_header_sizes_match_opencv(tmp_path: Path, ext: str) -> None:
    img = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / f"a{ext}"
    assert cv2.imwrite(str(path), img[:, :, 0] if ext == ".pgm" else img)
    assert image_size(path) == (53, 37)


def test_empty_and_corrupt_images_are_bad_frames(tmp_path: Path) -> None:
    (tmp_path / "a_empty.jpg").write_bytes(b"")
    (tmp_path / "b_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "c_truncated.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8))[1][:40])
    cv2.imwrite(str(tmp_path / "d_ok.png"), np.full((48, 64, 3), 200, np.uint8))
    src = FolderSource(tmp_path)
    assert [Path(f.source).name for f in src] == ["d_ok.png"]
    assert src.bad == 3
    single = open_source(str(tmp_path / "a_empty.jpg"))
    assert list(single) == [] and single.bad == 1


def test_looping_folder_of_bad_images_ends_instead_of_spinning(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    src = open_source(str(tmp_path), loop=True)
    assert list(src) == [] and src.bad == 1


@pytest.mark.parametrize("spec", ["synthetic:0x0", "synthetic:15x480", "synthetic:640x8193",
                                  "synthetic:100000x100000", "synthetic:640x480:0", "synthetic:640x", "synthetic:abc"])
def test_synthetic_sizes_are_bounded(spec: str) -> None:
    with pytest.raises(SourceError) as err:
        open_source(spec)
    assert "\n" not in str(err.value) and "synthetic" in str(err.value)


def test_synthetic_bounds_are_inclusive() -> None:
    assert next(iter(open_source("synthetic:16x16:1"))).image.shape == (16, 16, 3)
    assert SyntheticSource(8192, 16, 1).width == 8192
    assert open_source("synthetic").uri == "synthetic:640x480"


@pytest.mark.parametrize("uri", ["rtsp://", "rtsp://cam:99999/x", "http://ca m/x", "rtsp://:554/x", "http://[::1/x"])
def test_malformed_stream_uri_is_refused_at_once(uri: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source(uri)
    assert time.monotonic() - t0 < 0.5 and "\n" not in str(err.value)


def test_missing_file_is_a_one_line_error_at_once(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as err:
        open_source(str(tmp_path / "nope.mp4"))
    assert "\n" not in str(err.value)


def test_gst_without_gstreamer_backend_is_refused() -> None:
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer: gst: pipelines are live sources here")
    with pytest.raises(SourceError, match="no GStreamer backend"):
        open_source("gst:videotestsrc ! appsink")


def test_file_sources_start_again_after_cancel(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32, 3), i * 40, np.uint8))
    clip = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        out.write(np.full((48, 64, 3), i * 40, np.uint8))
    out.release()
    src = ChainSource([open_source(str(folder)), open_source(str(clip))])
    cancel = threading.Event()
    first = []
    for frame in src.iterate(cancel):  # a pipeline retired after two frames
        first.append(frame)
        if len(first) == 2:
            cancel.set()
    assert len(first) == 2
    again = list(src.iterate())  # the next pipeline gets everything, from the beginning
    assert [Path(f.source).name for f in again[:4]] == ["0.png", "1.png", "2.png", "3.png"]
    assert len(again) == 9 and [f.index for f in again[4:]] == [0, 1, 2, 3, 4]
    assert src.waiting is None


def test_paced_file_source_cancels_promptly(tmp_path: Path) -> None:
    src = open_source("synthetic:64x48", fps=0.2)  # one frame every 5 s
    cancel = threading.Event()
    it = src.iterate(cancel)
    assert next(it).index == 0
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    assert next(it, None) is None
    assert time.monotonic() - t0 < 0.2 + POLL_S + 0.3
    assert next(iter(src)).index == 0  # still open; a new pass starts at the beginning
