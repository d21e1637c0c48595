"""Frame sources: image, folder, video file, camera index, RTSP/HTTP URL, GStreamer pipeline, synthetic.

A live source (camera, stream) keeps only the latest frame: frames the pipeline was too slow to take
are dropped and counted. A file or folder drops nothing: the pipeline's back-pressure paces it.
Unreadable or wrong-sized frames are skipped and counted in ``bad``; the run goes on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .errors import FrameError, SourceError
from .preprocess import check_frame
from .types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_SYNTH = re.compile(r"^synthetic(?::(\d+)x(\d+))?(?::(\d+))?$")


class Source:
    """Iterate to get frames. ``dropped`` (stale live frames) and ``bad`` (skipped frames) are counters."""

    live: bool = False

    def __init__(self, uri: str, fps: float | None = None) -> None:
        self.uri = uri
        self.dropped = 0
        self.bad = 0
        self._period = 1.0 / fps if fps else 0.0
        self._next_t = 0.0
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.frames():
            if self._closed.is_set():
                return
            if self._period:
                self._pace()
            yield frame

    def _pace(self) -> None:
        now = time.perf_counter()
        if self._next_t > now:
            self._closed.wait(self._next_t - now)  # pacing a file to a frame rate, not synchronisation
        self._next_t = max(now, self._next_t) + self._period

    def _frame(self, name: str, index: int, image: object) -> Frame | None:
        try:
            img = check_frame(image)
        except FrameError as exc:
            self.bad += 1
            log.warning("skipped frame %s#%d: %s", name, index, exc)
            return None
        return Frame(source=name, index=index, image=img, ts=time.time(), t_read=time.perf_counter())

    def close(self) -> None:
        self._closed.set()


class ImageSource(Source):
    def __init__(self, path: Path, loop: bool = False, fps: float | None = None) -> None:
        super().__init__(str(path), fps)
        self.path, self.loop = path, loop

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            frame = self._frame(str(self.path), index, cv2.imread(str(self.path), cv2.IMREAD_UNCHANGED))
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
            for p in self.files:
                frame = self._frame(str(p), 0, cv2.imread(str(p), cv2.IMREAD_UNCHANGED))
                if frame is not None:
                    yield frame
            if not self.loop or self._closed.is_set():
                return


def _open_capture(target: str | int, api: int = cv2.CAP_ANY) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(target, api)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open source {target!r}",
                          "check the path, URL, camera index or GStreamer pipeline (and that OpenCV was "
                          "built with the needed backend)")
    return cap


class VideoFileSource(Source):
    """A video file, every frame in order. A frame whose size differs from the stream's is skipped."""

    def __init__(self, target: str, loop: bool = False, fps: float | None = None, api: int = cv2.CAP_ANY) -> None:
        super().__init__(target, fps)
        self.path, self.loop, self.api = target, loop, api
        _open_capture(target, api).release()  # fail now, with a clear message, not on first read

    def frames(self) -> Iterator[Frame]:
        index = 0
        size: tuple[int, ...] | None = None
        while True:
            cap = _open_capture(self.path, self.api)
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
            if not self.loop or self._closed.is_set():
                return


class LiveSource(Source):
    """Camera / network stream. A reader thread keeps the newest frame; older untaken frames are dropped.

    When the stream breaks it is reopened with exponential backoff (1 s .. 30 s) until closed; with
    ``reconnect=False`` (a file replayed as if live) the end of the stream ends the source.
    """

    live = True

    def __init__(self, target: str | int, api: int = cv2.CAP_ANY, fps: float | None = None,
                 reconnect: bool = True) -> None:
        super().__init__(str(target), fps)
        self._target, self._api, self._reconnect = target, api, reconnect
        self._cap: cv2.VideoCapture | None = _open_capture(target, api)
        self._cond = threading.Condition()
        self._latest: tuple[int, np.ndarray] | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._reader, name="edgeinfer-capture", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        index, backoff = 0, 1.0
        size: tuple[int, ...] | None = None
        while not self._closed.is_set():
            cap = self._cap
            ok, img = cap.read() if cap is not None else (False, None)
            if not ok:
                if cap is not None:
                    cap.release()
                self._cap = None
                if not self._reconnect:
                    break
                log.warning("source %s: read failed; reopening in %.0f s", self.uri, backoff)
                if self._closed.wait(backoff):
                    break
                backoff = min(backoff * 2, 30.0)
                try:
                    self._cap = _open_capture(self._target, self._api)
                except SourceError:
                    continue
                continue
            backoff = 1.0
            if size is not None and img is not None and img.shape != size:
                self.bad += 1
                index += 1
                continue
            if img is not None and size is None:
                size = img.shape
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = (index, img)
                self._cond.notify()
            index += 1
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and not self._ended:
                    self._cond.wait()
                if self._latest is None:
                    return
                index, img = self._latest
                self._latest = None
            frame = self._frame(self.uri, index, img)
            if frame is not None:
                yield frame

    def close(self) -> None:
        super().close()
        self._thread.join(timeout=5)
        if self._cap is not None:
            self._cap.release()


class SyntheticSource(Source):
    """Deterministic moving shapes: for smoke tests and benchmarks without a camera."""

    def __init__(self, width: int = 640, height: int = 480, count: int | None = None, fps: float | None = None,
                 seed: int = 0) -> None:
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


def open_source(uri: str, live: bool | None = None, loop: bool = False, fps: float | None = None) -> Source:
    """Open ``uri`` as the right kind of source; raise SourceError with the fix when it cannot be opened."""
    uri = uri.strip()
    if m := _SYNTH.match(uri):
        w, h, n = m.group(1), m.group(2), m.group(3)
        return SyntheticSource(int(w or 640), int(h or 480), int(n) if n else None, fps)
    if uri.isdigit():
        return LiveSource(int(uri), fps=fps)
    if uri.startswith("gst:"):
        return LiveSource(uri[4:], cv2.CAP_GSTREAMER, fps=fps)
    if uri.startswith(STREAM_SCHEMES):
        return VideoFileSource(uri, loop, fps) if live is False else LiveSource(uri, fps=fps)
    path = Path(uri).expanduser()
    if not path.exists():
        raise SourceError(f"source {uri!r} does not exist",
                          "pass an image, folder, video file, camera index, rtsp:// URL, gst:PIPELINE or synthetic:WxH")
    if path.is_dir():
        return FolderSource(path, loop, fps)
    if path.suffix.lower() in IMAGE_EXTS:
        return ImageSource(path, loop, fps)
    if live:  # a recording replayed as a camera would deliver it: newest frame only
        return LiveSource(str(path), fps=fps, reconnect=False)
    return VideoFileSource(str(path), loop, fps)


class ChainSource(Source):
    """Several sources one after another (the demo: sample images, then a clip)."""

    def __init__(self, sources: list[Source]) -> None:
        super().__init__(" + ".join(s.uri for s in sources))
        self.sources = sources
        self.live = any(s.live for s in sources)

    def frames(self) -> Iterator[Frame]:
        done_dropped = done_bad = 0
        for s in self.sources:
            for frame in s:
                if self._closed.is_set():
                    return
                self.dropped, self.bad = done_dropped + s.dropped, done_bad + s.bad
                yield frame
            done_dropped, done_bad = done_dropped + s.dropped, done_bad + s.bad
            self.dropped, self.bad = done_dropped, done_bad

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
