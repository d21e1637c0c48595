"""A real RTSP camera for tests: GStreamer's RTSP server serving a live test pattern as RTP/JPEG.

The server runs in a subprocess of the SYSTEM python (``/usr/bin/python3``), because PyGObject and
GstRtspServer come from Debian packages the venv cannot import (``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-good``; ``scripts/bootstrap.sh test`` installs
them as root). OpenCV's FFMPEG backend reads it like any IP camera (RTSP over TCP, RTP/JPEG).

Use from a test (the ``rtsp_camera`` fixture in ``tests/faults/conftest.py`` wraps the same)::

    from tests.faults.rtsp_server import RtspCamera, unavailable_reason

    if (why := unavailable_reason()) is not None:
        pytest.skip(why)
    with RtspCamera() as cam:          # started on a free port; cam.url = rtsp://127.0.0.1:PORT/cam
        ...                            # frames flow
        cam.stop()                     # a camera outage: the port refuses connections
        cam.start()                    # the camera is back, on the SAME port and URL
        cam.restart()                  # stop + start in one call
        cam.freeze(); cam.thaw()       # SIGSTOP / SIGCONT: connections stay open, nothing is sent

    cam = RtspCamera(port=8554)        # a fixed port: a camera that "boots after the device" is a
    ...                                # source opened on cam.url first, cam.start() later

API (all that other tests should rely on):

* ``RtspCamera(port=None, mount="/cam", width=320, height=240, fps=15, host="127.0.0.1")``:
  nothing runs until ``start()`` (or ``with``). ``port=None`` picks a free port at the first start and
  keeps it for every restart.
* ``.start(timeout_s=15)``: starts the server process and returns once it is listening
  (``RuntimeError`` with the server's stderr if it does not come up).
* ``.stop(timeout_s=5)``: SIGTERM, then SIGKILL; connected clients see their TCP stream close.
* ``.freeze()`` / ``.thaw()``: SIGSTOP / SIGCONT the server (a camera hung mid-stream: TCP stays up).
* ``.restart()``, ``.running``, ``.url``, ``.port``; context manager stops it on exit.
* ``unavailable_reason() -> str | None``: None when the system python can serve RTSP here, else the
  exact reason (for ``pytest.skip``).

Run directly (``/usr/bin/python3 tests/faults/rtsp_server.py --port 8554``) it serves until SIGTERM and
prints ``READY <port>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
_PROBE = 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'
_PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good"


def launch_line(width: int, height: int, fps: int) -> str:
    # I420 before jpegenc: without it rtpjpegpay rejects the JPEG and DESCRIBE answers 503.
    return (f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
            f"framerate={fps}/1 ! videoconvert ! video/x-raw,format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )")


def unavailable_reason() -> str | None:
    """Why GStreamer's RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found: the RTSP test camera runs on the system python3 with PyGObject"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return (f"GStreamer RTSP server not importable by {SYSTEM_PYTHON} ({last}); "
                f"install {_PACKAGES} (scripts/bootstrap.sh test does it as root)")
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RtspCamera:
    """GStreamer's RTSP server in a subprocess: start, stop (an outage), start again on the same port."""

    def __init__(self, port: int | None = None, mount: str = "/cam", width: int = 320, height: int = 240,
                 fps: int = 15, host: str = "127.0.0.1") -> None:
        self.host, self.mount, self.width, self.height, self.fps = host, mount, width, height, fps
        self.port = port if port is not None else free_port(host)
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}{self.mount}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 15.0) -> RtspCamera:
        if self.running:
            return self
        cmd = [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--host", self.host, "--port", str(self.port),
               "--mount", self.mount, "--width", str(self.width), "--height", str(self.height), "--fps", str(self.fps)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._proc = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = ""
        while time.monotonic() < deadline:  # the server prints READY once it is listening
            line = proc.stdout.readline()
            if line.startswith("READY") or not line:
                break
        if not line.startswith("READY") or not self._listening(deadline):
            self.stop()
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"RTSP server on port {self.port} did not start: {err.strip()[-500:]}")
        return self

    def _listening(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)  # polling a port with a deadline: there is nothing to wait on
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a frozen server must be able to act on SIGTERM
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is sent (a camera hung mid-stream)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze()``."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def restart(self) -> RtspCamera:
        self.stop()
        return self.start()

    def __enter__(self) -> RtspCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(argv: list[str]) -> int:  # runs under the system python with PyGObject
    ap = argparse.ArgumentParser(description="serve a live test pattern over RTSP (RTP/JPEG)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=15)
    args = ap.parse_args(argv)

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args.width, args.height, args.fps))
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1:]))
