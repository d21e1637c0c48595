"""Frame sources: image, folder, video file, camera index, RTSP/HTTP URL, GStreamer pipeline, synthetic.

A live source (camera, stream) keeps only the latest frame: frames the pipeline was too slow to take
are dropped and counted. A file or folder drops nothing: the pipeline's back-pressure paces it.
Unreadable, oversized or wrong-sized frames are skipped and counted in ``bad``; the run goes on.

Live sources come and go. One that is not there yet, breaks or stalls is (re)connected by its reader
thread with exponential backoff (``LivePolicy``) until closed; meanwhile ``waiting`` says why no frames
flow. ``iterate(cancel)`` hands out frames without owning the source: when ``cancel`` is set it
returns promptly and leaves the source open, so the next pipeline can iterate the same camera again.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import cv2
import numpy as np

from .errors import FrameError, SourceError
from .preprocess import MAX_SIDE, MIN_SIDE, check_frame
from .redact import redact
from .types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
MAX_IMAGE_PIXELS = 50_000_000  # an image file larger than this is skipped from its header, never decoded
SYNTHETIC_SIDES = (16, 8192)  # synthetic:WxH bounds, each side
POLL_S = 0.1  # how often a waiting iterator looks at its cancel event: the bound on how late it returns
_SYNTH = re.compile(r"^synthetic(?::(\d+)x(\d+))?(?::(\d+))?$")
_FIX_URI = "pass an image, folder, video file, camera index, rtsp:// URL, gst:PIPELINE or synthetic:WxH[:N]"


# -- image headers: width and height without decoding the pixels ---------------------------------------
def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
    f.seek(2)
    while True:
        b = f.read(1)
        while b == b"\xff":  # fill bytes before a marker
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            f.seek(1, 1)
            continue
        seg = f.read(2)
        if len(seg) < 2:
            return None
        length = struct.unpack(">H", seg)[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            sof = f.read(5)
            if len(sof) < 5:
                return None
            h, w = struct.unpack(">HH", sof[1:5])
            return w, h
        if length < 2:
            return None
        f.seek(length - 2, 1)
        if marker != 0xFF:  # the byte after a segment must start the next marker
            nxt = f.read(1)
            if nxt != b"\xff":
                return None


def _tiff_size(head: bytes, f: BinaryIO) -> tuple[int, int] | None:
    end = "<" if head[:2] == b"II" else ">"
    f.seek(struct.unpack(end + "I", head[4:8])[0])
    raw = f.read(2)
    if len(raw) < 2:
        return None
    dims: dict[int, int] = {}
    for _ in range(min(struct.unpack(end + "H", raw)[0], 4096)):
        entry = f.read(12)
        if len(entry) < 12:
            break
        tag, typ = struct.unpack(end + "HH", entry[:4])
        if tag in (256, 257):
            dims[tag] = struct.unpack(end + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]
    return (dims[256], dims[257]) if 256 in dims and 257 in dims else None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header (PNG, JPEG, BMP, WebP, TIFF, PNM); None if not recognised."""
    with path.open("rb") as f:
        head = f.read(32)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(f)
        if head[:2] == b"BM" and len(head) >= 26:
            if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", head[18:22])
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8X":
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            if kind == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if kind == b"VP8 ":
                rest = head[26:30] if len(head) >= 30 else head[26:] + f.read(30 - len(head))
                w, h = struct.unpack("<HH", rest)
                return w & 0x3FFF, h & 0x3FFF
            return None
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(head, f)
        if head[:1] == b"P" and head[1:2] in b"123456":
            tokens = re.sub(rb"#[^\n]*", b" ", head[2:] + f.read(224)).split()
            if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
                return int(tokens[0]), int(tokens[1])
    return None


@dataclass(frozen=True)
class LivePolicy:
    """How a live source (re)connects and when it calls a stream stalled. Tests pass short values."""

    # A camera is retried at least every second: a refused or timed-out connect costs next to nothing on a
    # device's network, and how soon inference resumes after an outage is what the fleet sees.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 1.0
    backoff_factor: float = 2.0
    jitter: float = 0.2  # each wait is scaled by a random factor in [1 - jitter, 1 + jitter]
    open_timeout_s: float = 10.0  # FFMPEG: give up opening (connect + first packets) after this
    read_timeout_s: float = 10.0  # FFMPEG: a read that gets nothing for this long fails -> reconnect
    stall_s: float = 3.0  # `waiting` reports "no frame for N s" once a connected stream is this quiet
    close_join_s: float = 2.0  # close() waits this long for the reader; it then releases on its own

    def backoff(self, attempt: int, rng: random.Random) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * self.backoff_factor ** min(attempt, 64))
        return max(0.0, base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter))


def image_problem(path: Path) -> str | None:
    """Why the image file should not be decoded (empty, not an image, too big), from its header alone."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        size = image_size(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if size is None:
        return "not a PNG, JPEG, BMP, WebP, TIFF or PNM image (header not recognised)"
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        return (f"{w}x{h} is {w * h / 1e6:.0f} megapixels, over the {MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel "
                f"limit (sources.MAX_IMAGE_PIXELS): not decoded")
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        return f"{w}x{h} is outside {MIN_SIDE}..{MAX_SIDE} pixels a side: not decoded"
    return None


class Source:
    """Iterate to get frames. ``dropped`` (stale live frames) and ``bad`` (skipped frames) are counters.

    Subclasses implement ``frames()``: one pass from the start. ``iterate(cancel)`` wraps it with
    pacing and cancellation; ``iter(source)`` is ``iterate(None)``.
    """

    live: bool = False

    def __init__(self, uri: str, fps: float | None = None) -> None:
        self.uri = redact(uri)  # what results, summaries and logs show; subclasses open their own target
        self.dropped = 0
        self.bad = 0
        self._period = 1.0 / fps if fps else 0.0
        self._closed = threading.Event()

    @property
    def waiting(self) -> str | None:
        """None while frames flow (always, for files); else one line: ``waiting for source: <reason>``."""
        return None

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _stream(self, cancel: threading.Event | None) -> Generator[Frame, None, None]:
        yield from self.frames()

    def _stopped(self, cancel: threading.Event | None) -> bool:
        return self._closed.is_set() or (cancel is not None and cancel.is_set())

    def _sleep(self, seconds: float, cancel: threading.Event | None) -> bool:
        """Wait ``seconds`` unless cancelled or closed first; True when stopped."""
        end = time.monotonic() + seconds
        while not self._stopped(cancel):
            left = end - time.monotonic()
            if left <= 0:
                return False
            (cancel or self._closed).wait(min(left, POLL_S))
        return True

    def iterate(self, cancel: threading.Event | None = None) -> Iterator[Frame]:
        """Frames until the source ends, ``cancel`` is set or ``close()`` is called; never closes the source.

        Files, folders, images and synthetic sources start again from the beginning at each call; a
        live source continues with its newest frame.
        """
        gen = self._stream(cancel)
        next_t = 0.0
        try:
            for frame in gen:
                if self._stopped(cancel):
                    return
                if self._period:
                    now = time.monotonic()
                    if next_t > now:
                        if self._sleep(next_t - now, cancel):
                            return  # pacing a file to a frame rate, not synchronisation
                        # a paced file stands in for a camera: its frame is captured when it is due, so its
                        # age at the result (the latency) does not include the wait for its turn
                        frame.ts, frame.t_read = time.time(), time.perf_counter()
                    next_t = max(now, next_t) + self._period
                yield frame
        finally:
            gen.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.iterate(None)

    def _frame(self, name: str, index: int, image: object) -> Frame | None:
        try:
            img = check_frame(image)
        except FrameError as exc:
            self.bad += 1
            log.warning("skipped frame %s#%d: %s", name, index, exc)
            return None
        return Frame(source=name, index=index, image=img, ts=time.time(), t_read=time.perf_counter())

    def _image(self, path: Path, index: int) -> Frame | None:
        """Read one image file, checking its header before decoding it; None (counted in ``bad``) if unusable."""
        if problem := image_problem(path):
            self.bad += 1
            log.warning("skipped frame %s#%d: %s", path, index, problem)
            return None
        return self._frame(str(path), index, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))

    def close(self) -> None:
        self._closed.set()


class ImageSource(Source):
    def __init__(self, path: Path, loop: bool = False, fps: float | None = None) -> None:
        super().__init__(str(path), fps)
        self.path, self.loop = path, loop

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            frame = self._image(self.path, index)
            if frame is None:
                return
            yield frame
            index += 1
            if not self.loop:
                return


class FolderSource(Source):
    """Every image in a folder, in name order. Each frame's ``source`` is the file's path."""

    def __init__(self, path: Path, loop: bool = False, fps: float | None = None) -> None:
        super().__init__(str(path), fps)
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not self.files:
            raise SourceError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_EXTS))})",
                              "point --source at a folder of images, a video or a stream")
        self.loop = loop

    def frames(self) -> Iterator[Frame]:
        while True:
            good = 0
            for p in self.files:
                frame = self._image(p, 0)
                if frame is not None:
                    good += 1
                    yield frame
            if not self.loop or not good or self._closed.is_set():
                return  # a looping folder with no good image ends rather than spinning


def _capture_params(target: str | int, api: int, policy: LivePolicy) -> list[int]:
    """FFMPEG open/read timeouts (OpenCV's default is 30 s each) for network streams."""
    if api not in (cv2.CAP_ANY, cv2.CAP_FFMPEG) or not isinstance(target, str) or not target.startswith(STREAM_SCHEMES):
        return []
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(1, int(policy.open_timeout_s * 1000)),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, max(1, int(policy.read_timeout_s * 1000))]


def _open_capture(target: str | int, api: int = cv2.CAP_ANY, policy: LivePolicy | None = None) -> cv2.VideoCapture:
    params = _capture_params(target, api, policy or LivePolicy())
    if params and cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
        api = cv2.CAP_FFMPEG  # the timeouts are FFMPEG's; CAP_ANY would pick FFMPEG for a URL anyway
    else:
        params = []  # an OpenCV without FFMPEG: no timeouts to set, let CAP_ANY find a backend
    cap = cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)
    shown = redact(target) if isinstance(target, str) else target
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open source {shown!r}",
                          "check the path, URL, camera index or GStreamer pipeline (and that OpenCV was "
                          "built with the needed backend)")
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if w * h > MAX_IMAGE_PIXELS:
        cap.release()
        raise SourceError(f"source {shown!r} delivers {w}x{h} frames, over the {MAX_IMAGE_PIXELS / 1e6:.0f}-"
                          "megapixel limit", "use a smaller stream or resolution")
    return cap


class VideoFileSource(Source):
    """A video file, every frame in order. A frame whose size differs from the stream's is skipped."""

    def __init__(self, target: str, loop: bool = False, fps: float | None = None, api: int = cv2.CAP_ANY,
                 policy: LivePolicy | None = None) -> None:
        super().__init__(target, fps)
        self.path, self.loop, self.api = target, loop, api
        self.policy = policy or LivePolicy()
        _open_capture(target, api, self.policy).release()  # fail now, with a clear message, not on first read

    def frames(self) -> Iterator[Frame]:
        index = 0
        size: tuple[int, ...] | None = None
        while True:
            cap = _open_capture(self.path, self.api, self.policy)
            start = index
            try:
                while not self._closed.is_set():
                    ok, img = cap.read()
                    if not ok:
                        break
                    frame = self._frame(self.path, index, img)
                    index += 1
                    if frame is None:
                        continue
                    if size is None:
                        size = frame.image.shape
                    elif frame.image.shape != size:
                        self.bad += 1
                        log.warning("skipped frame %s#%d: size %s differs from the stream's %s", self.path,
                                    frame.index, frame.image.shape[:2], size[:2])
                        continue
                    yield frame
            finally:
                cap.release()
            if not self.loop or index == start or self._closed.is_set():
                return  # a looping video that yields no frame ends rather than reopening forever


def _why_unopened(target: str | int, api: int, policy: LivePolicy, took_s: float) -> str:
    """A one-line reason a live target did not open (OpenCV itself says only 'not opened')."""
    if isinstance(target, int):
        if not Path(f"/dev/video{target}").exists():
            return f"camera {target} not found (/dev/video{target} does not exist)"
        return f"camera {target} could not be opened (busy, or no permission)"
    if api == cv2.CAP_GSTREAMER:
        return "the GStreamer pipeline did not start"
    parts = urlsplit(target)
    if parts.scheme in DEFAULT_PORTS and parts.hostname:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        try:
            with socket.create_connection((parts.hostname, port), timeout=min(2.0, policy.open_timeout_s)):
                pass
        except OSError as exc:
            return f"{redact(target)}: cannot connect to {parts.hostname}:{port}: {exc.strerror or exc}"
        if took_s >= policy.open_timeout_s * 0.9:
            return f"{redact(target)}: the server accepts connections but sent no video within {took_s:.0f} s"
        return f"{redact(target)}: the server answered but no video stream could be opened"
    return f"{redact(target)} could not be opened"


class LiveSource(Source):
    """Camera / network stream. A reader thread keeps the newest frame; older untaken frames are dropped.

    The reader connects, and reconnects after a break or a stall, with exponential backoff (``policy``)
    until closed; a target that is not there yet is waited for, not an error. With ``reconnect=False``
    (a file replayed as if live) the target must open now and the end of the stream ends the source.
    The capture belongs to the reader thread alone: ``close()`` never releases it under a ``read()``.
    """

    live = True

    def __init__(self, target: str | int, api: int = cv2.CAP_ANY, fps: float | None = None,
                 reconnect: bool = True, policy: LivePolicy | None = None) -> None:
        super().__init__(str(target), fps)
        self._target, self._api, self._reconnect = target, api, reconnect
        self.policy = policy or LivePolicy()
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._latest: tuple[int, np.ndarray] | None = None
        self._ended = False
        self._reason: str | None = f"connecting to {redact(self.uri)}"  # why no frame flows; None once one did
        self._last_frame: float | None = None  # monotonic time of the newest frame on this connection
        self._first_frame = threading.Event()
        cap = None
        if not reconnect:  # a recording replayed as live: it is there now or it is an error
            cap = self._open()
            if cap is None:
                raise SourceError(f"cannot open source {redact(self.uri)!r}: {self._reason}",
                                  "check the path, URL, camera index or GStreamer pipeline")
        self._thread = threading.Thread(target=self._reader, args=(cap,), name="edgeinfer-capture", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> str | None:
        with self._cond:
            if self._ended or self._closed.is_set():
                return None
            if self._reason is not None:
                return f"waiting for source: {self._reason}"
            quiet = time.monotonic() - self._last_frame if self._last_frame is not None else 0.0
        if quiet >= self.policy.stall_s:
            return f"waiting for source: no frame for {quiet:.0f} s"
        return None

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until the first frame has been read (True), the source ended, or ``timeout_s`` passed."""
        end = time.monotonic() + timeout_s
        while not self._first_frame.is_set():
            left = end - time.monotonic()
            if left <= 0 or self._ended or self._closed.is_set():
                break
            self._first_frame.wait(min(left, POLL_S))
        return self._first_frame.is_set()

    def wait_ended(self, timeout_s: float) -> bool:
        """Block until the reader has stopped for good (a stream read without reconnect ran out, or the source
        was closed): True, or False after ``timeout_s``. Frames it published are still there to take."""
        with self._cond:
            return self._cond.wait_for(lambda: self._ended, timeout_s)

    def _set_reason(self, reason: str) -> None:
        with self._cond:
            changed = reason != self._reason
            self._reason, self._last_frame = reason, None
        if changed:
            log.warning("source %s: waiting for source: %s", redact(self.uri), reason)

    def _open(self) -> cv2.VideoCapture | None:
        t0 = time.monotonic()
        try:
            return _open_capture(self._target, self._api, self.policy)
        except SourceError as exc:
            if exc.problem.startswith("cannot open source"):  # OpenCV says no more than that: find out why
                self._set_reason(_why_unopened(self._target, self._api, self.policy, time.monotonic() - t0))
            else:
                self._set_reason(exc.problem)
            return None

    def _reader(self, cap: cv2.VideoCapture | None) -> None:
        attempt, index, failures = 0, 0, 0
        size: tuple[int, ...] | None = None
        try:
            while not self._closed.is_set():
                try:
                    if cap is None:
                        cap = self._open()
                        size = None  # a camera may come back with another resolution
                        if cap is None:
                            if not self._reconnect or self._closed.wait(self.policy.backoff(attempt, self._rng)):
                                return
                            attempt += 1
                            continue
                    t0 = time.monotonic()
                    ok, img = cap.read()
                    if not ok or img is None:
                        took = time.monotonic() - t0
                        cap.release()
                        cap = None
                        if not self._reconnect:
                            return
                        why = (f"no frame for {took:.0f} s (read timed out)" if took >= self.policy.read_timeout_s * 0.9
                               else "stream ended or broke")
                        self._set_reason(f"{why}; reconnecting to {redact(self.uri)}")
                        if self._closed.wait(self.policy.backoff(attempt, self._rng)):
                            return
                        attempt += 1
                        continue
                    attempt = 0
                    self._publish(index, img, size)
                    size = size or img.shape
                    index += 1
                except Exception as exc:  # the reader must never die silently
                    failures += 1
                    if failures == 1:
                        log.exception("source %s: reader error", redact(self.uri))
                    else:
                        log.debug("source %s: reader error again: %s", redact(self.uri), exc)
                    if cap is not None:
                        cap.release()
                        cap = None
                    if not self._reconnect:
                        return
                    self._set_reason(f"reader error {type(exc).__name__}: {exc}; reconnecting")
                    if self._closed.wait(self.policy.backoff(attempt, self._rng)):
                        return
                    attempt += 1
        finally:
            if cap is not None:
                cap.release()  # the reader releases: never while another thread is inside read()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _publish(self, index: int, img: np.ndarray, size: tuple[int, ...] | None) -> None:
        with self._cond:
            if self._reason is not None:
                log.info("source %s: frames flowing", redact(self.uri))
            self._reason, self._last_frame = None, time.monotonic()
            if size is not None and img.shape != size:
                self.bad += 1
                return
            if self._latest is not None:
                self.dropped += 1
            self._latest = (index, img)
            self._cond.notify_all()
        self._first_frame.set()

    def _stream(self, cancel: threading.Event | None) -> Generator[Frame, None, None]:
        while not self._stopped(cancel):
            with self._cond:
                if self._latest is None and not self._ended:
                    self._cond.wait(POLL_S)  # woken by a frame, the end or close(); else looks at cancel
                if self._latest is None:
                    if self._ended:
                        return
                    continue
                index, img = self._latest
                self._latest = None
            frame = self._frame(self.uri, index, img)
            if frame is not None:
                yield frame

    def close(self) -> None:
        super().close()
        with self._cond:
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.policy.close_join_s)
            if self._thread.is_alive():
                log.warning("source %s: reader still inside open/read after %.0f s; it will release the capture "
                            "when that returns", redact(self.uri), self.policy.close_join_s)


class SyntheticSource(Source):
    """Deterministic moving shapes: for smoke tests and benchmarks without a camera."""

    def __init__(self, width: int = 640, height: int = 480, count: int | None = None, fps: float | None = None,
                 seed: int = 0) -> None:
        lo, hi = SYNTHETIC_SIDES
        if not (lo <= width <= hi and lo <= height <= hi):
            raise SourceError(f"synthetic:{width}x{height} is outside {lo}..{hi} pixels a side",
                              f"use synthetic:WxH[:N] with {lo} <= W, H <= {hi}")
        if count is not None and count < 1:
            raise SourceError(f"synthetic frame count {count} is below 1", "use synthetic:WxH:N with N >= 1")
        super().__init__(f"synthetic:{width}x{height}", fps)
        self.width, self.height, self.count = width, height, count
        self._rng = np.random.default_rng(seed)
        self._base = self._rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)

    def frames(self) -> Iterator[Frame]:
        index = 0
        while self.count is None or index < self.count:
            img = self._base.copy()
            r = max(8, min(self.width, self.height) // 8)
            cx = int((index * 7) % max(1, self.width - 2 * r)) + r
            cy = self.height // 2
            cv2.circle(img, (cx, cy), r, (40, 180, 240), -1)
            cv2.rectangle(img, (self.width - cx - r, cy - r), (self.width - cx + r, cy + r), (200, 80, 30), -1)
            yield Frame(source=self.uri, index=index, image=img, ts=time.time(), t_read=time.perf_counter())
            index += 1


def check_stream_url(uri: str) -> None:
    """Raise SourceError at once for a malformed stream URL (no host, bad port, spaces)."""
    if any(c.isspace() or ord(c) < 32 for c in uri):
        raise SourceError(f"source URL {redact(uri)!r} contains whitespace or control characters",
                          "percent-encode them, or fix source.uri")
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError as exc:
        raise SourceError(f"source URL {redact(uri)!r} is malformed: {exc}", "write it as scheme://host[:port]/path"
                          ) from exc
    if not parts.hostname and parts.scheme != "udp":
        raise SourceError(f"source URL {redact(uri)!r} has no host", "write it as scheme://host[:port]/path")


def open_source(uri: str, live: bool | None = None, loop: bool = False, fps: float | None = None, *,
                require_connected: bool = False, connect_timeout_s: float = 10.0,
                policy: LivePolicy | None = None) -> Source:
    """Open ``uri`` as the right kind of source; raise SourceError with the fix when it cannot be opened.

    A live target (camera index, stream URL, ``gst:``) that is not there yet is not an error: the source
    waits for it (see ``Source.waiting``). With ``require_connected`` it must deliver a first frame within
    ``connect_timeout_s`` or SourceError says why (a config update must not swap in a dead camera).
    A malformed URI, a missing file and bad ``synthetic:`` sizes are always SourceError at once.
    """
    uri = uri.strip()
    if uri.startswith("synthetic"):
        if not (m := _SYNTH.match(uri)):
            raise SourceError(f"source {uri!r} is not synthetic[:WxH][:N]", "write e.g. synthetic:640x480:100")
        w, h, n = m.group(1), m.group(2), m.group(3)
        return SyntheticSource(int(w or 640), int(h or 480), int(n) if n else None, fps)
    target: str | int
    if uri.isdigit():
        target, api = int(uri), cv2.CAP_ANY
    elif uri.startswith("gst:"):
        target, api = uri[4:].strip(), cv2.CAP_GSTREAMER
        if not target:
            raise SourceError("source 'gst:' names no pipeline", "write gst:<a GStreamer pipeline ending in appsink>")
        if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
            raise SourceError("this OpenCV build has no GStreamer backend (the PyPI wheels have none), so gst: "
                              "sources cannot open", "use an OpenCV built with GStreamer (docs/sources.md: Debian's "
                              "python3-opencv in a --system-site-packages venv, or JetPack's), or an rtsp:// or "
                              "http:// URL")
    elif uri.startswith(STREAM_SCHEMES):
        check_stream_url(uri)
        if live is False:
            return VideoFileSource(uri, loop, fps, policy=policy)
        target, api = uri, cv2.CAP_ANY
    else:
        return _open_path(uri, live, loop, fps)
    source = LiveSource(target, api, fps=fps, policy=policy)
    if require_connected and not source.wait_connected(connect_timeout_s):
        reason = (source.waiting or "no frame").removeprefix("waiting for source: ")
        source.close()
        raise SourceError(f"source {redact(uri)!r} delivered no frame within {connect_timeout_s:g} s: {reason}",
                          "check the camera is on and reachable; the running source stays")
    return source


def _open_path(uri: str, live: bool | None, loop: bool, fps: float | None) -> Source:
    path = Path(uri).expanduser()
    if not path.exists():
        raise SourceError(f"source {uri!r} does not exist", _FIX_URI)
    if path.is_dir():
        return FolderSource(path, loop, fps)
    if path.suffix.lower() in IMAGE_EXTS:
        return ImageSource(path, loop, fps)
    if live:  # a recording replayed as a camera would deliver it: newest frame only
        return LiveSource(str(path), fps=fps, reconnect=False)
    return VideoFileSource(str(path), loop, fps)


class ChainSource(Source):
    """Several sources one after another (the demo: sample images, then a clip).

    ``dropped`` and ``bad`` are the sums over the parts; ``waiting`` is the current part's.
    """

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources
        self._current: Source | None = None
        self._own_dropped = self._own_bad = 0
        super().__init__(" + ".join(s.uri for s in sources))
        self.live = any(s.live for s in sources)

    @property
    def dropped(self) -> int:
        return self._own_dropped + sum(s.dropped for s in self.sources)

    @dropped.setter
    def dropped(self, value: int) -> None:
        self._own_dropped = value

    @property
    def bad(self) -> int:
        return self._own_bad + sum(s.bad for s in self.sources)

    @bad.setter
    def bad(self, value: int) -> None:
        self._own_bad = value

    @property
    def waiting(self) -> str | None:
        current = self._current
        return current.waiting if current is not None else None

    def _stream(self, cancel: threading.Event | None) -> Generator[Frame, None, None]:
        try:
            for s in self.sources:
                self._current = s
                yield from s.iterate(cancel)
                if self._stopped(cancel):
                    return
        finally:
            self._current = None

    def close(self) -> None:
        super().close()
        for s in self.sources:
            s.close()


class MemorySource(Source):
    """Frames already in memory (benchmarks, tests, snapshots), optionally cycled ``repeat`` times."""

    def __init__(self, images: list[np.ndarray], name: str = "memory", repeat: int = 1) -> None:
        super().__init__(name)
        self.images, self.repeat = images, repeat

    def frames(self) -> Iterator[Frame]:
        index = 0
        for _ in range(self.repeat):
            for img in self.images:
                frame = self._frame(self.uri, index, img)
                index += 1
                if frame is not None:
                    yield frame
