"""Live sources that come and go, against real servers: GStreamer's RTSP camera, an HTTP MJPEG camera,
and a port that accepts and never sends. The source waits (saying why), reconnects, never hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeinfer.core.errors import SourceError
from edgeinfer.core.sources import POLL_S, LivePolicy, LiveSource, Source, open_source
from edgeinfer.core.types import Frame

from .rtsp_server import RtspCamera, free_port
from .stream_servers import MjpegServer, SilentServer


def take(src: Source, n: int, timeout_s: float) -> list[Frame]:
    """Up to ``n`` frames from ``src.iterate``, giving up after ``timeout_s`` (the cancel event, not a sleep)."""
    cancel = threading.Event()
    timer = threading.Timer(timeout_s, cancel.set)
    timer.start()
    out: list[Frame] = []
    try:
        for frame in src.iterate(cancel):
            out.append(frame)
            if len(out) >= n:
                break
    finally:
        timer.cancel()
    return out


def wait_for(cond: Callable[[], object], timeout_s: float) -> object:
    """Poll ``cond`` until it is truthy or the deadline passes; return its last value."""
    end = time.monotonic() + timeout_s
    value = cond()
    while not value and time.monotonic() < end:
        time.sleep(0.02)  # polling a condition with a deadline: the source offers no event for its state
        value = cond()
    return value


def test_camera_that_starts_late_is_waited_for(rtsp_camera_factory: Callable[..., RtspCamera],
                                               fast_live_policy: LivePolicy) -> None:
    cam = rtsp_camera_factory()  # not started: the device booted before the camera
    src = open_source(cam.url, policy=fast_live_policy)
    try:
        assert src.live
        why = wait_for(lambda: src.waiting and "refused" in src.waiting, 5)
        assert why, src.waiting
        assert src.waiting.startswith("waiting for source: ") and "\n" not in src.waiting
        assert take(src, 1, 0.3) == []  # nothing yet, and the iterator gave up when told to
        cam.start()
        frames = take(src, 3, 15)
        assert len(frames) == 3 and frames[0].image.shape == (240, 320, 3)
        assert src.waiting is None
    finally:
        src.close()


def test_camera_that_drops_mid_stream_reconnects(rtsp_camera: RtspCamera, fast_live_policy: LivePolicy) -> None:
    src = open_source(rtsp_camera.url, policy=fast_live_policy, require_connected=True, connect_timeout_s=15)
    try:
        before = take(src, 3, 10)
        assert len(before) == 3 and src.waiting is None
        rtsp_camera.stop()  # the outage
        assert wait_for(lambda: src.waiting, 10), "the source never said it lost the camera"
        said = src.waiting
        assert wait_for(lambda: src.waiting and "refused" in src.waiting, 10), src.waiting
        rtsp_camera.start()  # the camera is back on the same URL
        after = take(src, 3, 15)
        assert len(after) == 3, f"no frames after the camera came back; waiting={src.waiting!r} (was {said!r})"
        assert after[0].index > before[-1].index  # one stream, indices keep rising across the reconnect
        assert src.waiting is None
    finally:
        src.close()


def test_camera_that_hangs_mid_stream_is_noticed_and_reconnected(rtsp_camera: RtspCamera,
                                                                 fast_live_policy: LivePolicy) -> None:
    src = open_source(rtsp_camera.url, policy=fast_live_policy, require_connected=True, connect_timeout_s=15)
    try:
        assert len(take(src, 2, 10)) == 2
        rtsp_camera.freeze()  # TCP stays up, nothing is sent
        assert wait_for(lambda: src.waiting and "no frame for" in src.waiting, 5), src.waiting
        # the FFMPEG read timeout fires (1.5 s here), the reader drops the connection and retries
        assert wait_for(lambda: src.waiting and "read timed out" in src.waiting, 10), src.waiting
        rtsp_camera.thaw()
        assert len(take(src, 2, 15)) == 2, src.waiting
        assert src.waiting is None
    finally:
        src.close()


def test_same_open_camera_is_iterated_again_after_cancel(rtsp_camera: RtspCamera,
                                                         fast_live_policy: LivePolicy) -> None:
    src = open_source(rtsp_camera.url, policy=fast_live_policy, require_connected=True, connect_timeout_s=15)
    try:
        first = take(src, 2, 10)  # the first pipeline, retired by its cancel event
        cancel = threading.Event()
        got: list[Frame] = []
        ended = threading.Event()

        def consume() -> None:
            for frame in src.iterate(cancel):
                got.append(frame)
            ended.set()

        t = threading.Thread(target=consume, daemon=True)
        t.start()
        assert wait_for(lambda: len(got) >= 2, 10)
        t0 = time.monotonic()
        cancel.set()
        assert ended.wait(1.0)
        assert time.monotonic() - t0 < POLL_S + 0.3
        assert got[0].index > first[-1].index  # the second pipeline continued with the newest frame
        assert len(take(src, 1, 10)) == 1  # the source is still open for the next one
    finally:
        src.close()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_server_that_accepts_and_never_sends(silent_server: SilentServer, scheme: str) -> None:
    policy = LivePolicy(backoff_initial_s=0.1, backoff_max_s=0.2, open_timeout_s=1.0, read_timeout_s=1.0,
                        stall_s=0.5, close_join_s=1.0)
    src = open_source(silent_server.url(scheme, "/stream"), policy=policy)
    try:
        t0 = time.monotonic()
        assert take(src, 1, 0.5) == []
        assert time.monotonic() - t0 < 0.5 + POLL_S + 0.3  # iterate(cancel) returned although no frame came
        why = wait_for(lambda: src.waiting and "sent no video" in src.waiting, 6)
        assert why, src.waiting
        assert silent_server.accepted >= 1
    finally:
        t0 = time.monotonic()
        src.close()  # the reader may be inside the FFMPEG open right now
        assert time.monotonic() - t0 < policy.close_join_s + 0.5
    assert src.waiting is None


def test_require_connected_raises_with_the_reason(silent_server: SilentServer) -> None:
    policy = LivePolicy(open_timeout_s=0.8, backoff_initial_s=0.1, close_join_s=1.0)
    port = free_port()  # nobody listens here
    t0 = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source(f"rtsp://admin:s3cret@127.0.0.1:{port}/cam", require_connected=True, connect_timeout_s=1.0,
                    policy=policy)
    assert time.monotonic() - t0 < 3.0
    msg = str(err.value)
    assert "\n" not in msg and "no frame within 1 s" in msg and "refused" in msg
    assert "s3cret" not in msg and "admin:***@" in msg  # the camera's password stays out of logs and state
    with pytest.raises(SourceError, match=r"no frame within 1\.5 s"):
        open_source(silent_server.url("rtsp"), require_connected=True, connect_timeout_s=1.5, policy=policy)


def test_http_mjpeg_camera_stops_stalls_and_comes_back(mjpeg_server: MjpegServer,
                                                       fast_live_policy: LivePolicy) -> None:
    src = open_source(mjpeg_server.url, policy=fast_live_policy, require_connected=True, connect_timeout_s=10)
    try:
        assert len(take(src, 3, 10)) == 3 and src.waiting is None
        mjpeg_server.stall()
        assert wait_for(lambda: src.waiting and "no frame for" in src.waiting, 5), src.waiting
        mjpeg_server.resume()
        assert len(take(src, 2, 10)) == 2, src.waiting
        mjpeg_server.stop()
        assert wait_for(lambda: src.waiting and "refused" in src.waiting, 10), src.waiting
        mjpeg_server.start()
        assert len(take(src, 2, 10)) == 2, src.waiting
        assert src.waiting is None
    finally:
        src.close()


def test_camera_index_that_is_not_there_waits_with_the_reason(fast_live_policy: LivePolicy) -> None:
    index = next(i for i in range(60, 100) if not Path(f"/dev/video{i}").exists())
    src = open_source(str(index), policy=fast_live_policy)
    try:
        assert wait_for(lambda: src.waiting and f"camera {index} not found" in src.waiting, 5), src.waiting
    finally:
        src.close()


class _Capture:
    """A capture whose ``read`` is scripted around a real clip: raise, or block until released."""

    def __init__(self, clip: Path, raise_first: bool = False, block: threading.Event | None = None) -> None:
        self.real = cv2.VideoCapture(str(clip))
        self.raise_first, self.block = raise_first, block
        self.in_read = threading.Event()
        self.released_while_reading = False
        self.released = threading.Event()
        self._reading = False

    def read(self) -> tuple[bool, np.ndarray | None]:
        self._reading = True
        self.in_read.set()
        try:
            if self.raise_first:
                self.raise_first = False
                raise RuntimeError("driver fell over")
            if self.block is not None:
                self.block.wait(30)
            return self.real.read()
        finally:
            self._reading = False

    def release(self) -> None:
        self.released_while_reading |= self._reading
        self.real.release()
        self.released.set()


class _ScriptedLive(LiveSource):
    """A real LiveSource whose capture comes from ``make`` (fault injection at the driver boundary)."""

    def __init__(self, make: Callable[[], _Capture], policy: LivePolicy, reconnect: bool = True) -> None:
        self.make, self.made = make, []  # type: ignore[var-annotated]
        super().__init__("scripted", policy=policy, reconnect=reconnect)

    def _open(self) -> cv2.VideoCapture | None:
        cap = self.make()
        self.made.append(cap)
        return cap  # type: ignore[return-value]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        out.write(np.full((48, 64, 3), i * 5, np.uint8))
    out.release()
    return path


def test_reader_error_reconnects_and_is_logged_once(clip: Path, fast_live_policy: LivePolicy,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    opened: list[int] = []

    def make() -> _Capture:
        opened.append(1)
        return _Capture(clip, raise_first=len(opened) == 1)  # the first capture's driver falls over

    src = _ScriptedLive(make, fast_live_policy)
    try:
        frames = take(src, 3, 10)
        assert len(frames) == 3, src.waiting
        assert len(src.made) == 2 and src.made[0].released.is_set()  # the broken capture was released
        errors = [r for r in caplog.records if "reader error" in r.getMessage() and r.exc_info]
        assert len(errors) == 1
    finally:
        src.close()


def test_reader_error_without_reconnect_ends_the_stream(clip: Path, fast_live_policy: LivePolicy) -> None:
    src = _ScriptedLive(lambda: _Capture(clip, raise_first=True), fast_live_policy, reconnect=False)
    done = threading.Event()
    threading.Thread(target=lambda: (list(src), done.set()), daemon=True).start()
    assert done.wait(5), "the consumer was never woken after the reader died"
    src.close()


def test_close_never_blocks_and_never_releases_under_a_read(clip: Path, fast_live_policy: LivePolicy) -> None:
    gate = threading.Event()
    src = _ScriptedLive(lambda: _Capture(clip, block=gate), fast_live_policy)
    assert wait_for(lambda: src.made and src.made[0].in_read.is_set(), 5)
    cap = src.made[0]
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < fast_live_policy.close_join_s + 0.5
    assert not cap.released.is_set()  # still inside read(): left alone
    gate.set()  # the driver returns
    assert cap.released.wait(5)  # and the reader released it
    assert not cap.released_while_reading
