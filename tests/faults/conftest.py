"""Fixtures for fault tests: real stream servers that come and go.

* ``rtsp_camera_factory(**kw) -> RtspCamera``: a GStreamer RTSP camera, NOT started (call ``.start()``;
  ``.stop()`` is an outage, ``.start()`` again brings it back on the same port; see
  ``tests/faults/rtsp_server.py``). Stopped at teardown. Skips, with the exact reason, when the system
  python cannot serve RTSP.
* ``rtsp_camera``: one such camera, already started.
* ``mjpeg_server``: an HTTP MJPEG camera, started (``stop``/``start``/``stall``/``resume``).
* ``silent_server``: a TCP port that accepts and never sends.
* ``fast_live_policy``: a ``LivePolicy`` with sub-second backoff and timeouts, so reconnect tests are quick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgeinfer.core.sources import LivePolicy

from .rtsp_server import RtspCamera, unavailable_reason
from .stream_servers import MjpegServer, SilentServer


@pytest.fixture(scope="session")
def rtsp_unavailable() -> str | None:
    return unavailable_reason()


@pytest.fixture
def rtsp_camera_factory(rtsp_unavailable: str | None) -> Iterator[Callable[..., RtspCamera]]:
    if rtsp_unavailable is not None:
        pytest.skip(rtsp_unavailable)
    made: list[RtspCamera] = []

    def make(**kw: Any) -> RtspCamera:
        cam = RtspCamera(**kw)
        made.append(cam)
        return cam

    yield make
    for cam in made:
        cam.stop()


@pytest.fixture
def rtsp_camera(rtsp_camera_factory: Callable[..., RtspCamera]) -> RtspCamera:
    return rtsp_camera_factory().start()


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    with MjpegServer() as server:
        yield server


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def fast_live_policy() -> LivePolicy:
    return LivePolicy(backoff_initial_s=0.1, backoff_max_s=0.4, jitter=0.1, open_timeout_s=4.0,
                      read_timeout_s=1.5, stall_s=0.5, close_join_s=1.0)
