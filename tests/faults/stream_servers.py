"""Stream servers for source fault tests: an HTTP MJPEG camera and a TCP port that accepts and never sends.

* ``MjpegServer(port=None, width=320, height=240, fps=15)``: a ``threading`` ``http.server`` serving
  ``multipart/x-mixed-replace`` JPEG frames at ``url`` (``http://127.0.0.1:PORT/stream.mjpg``), like an
  IP camera's MJPEG endpoint. ``start()`` / ``stop()`` (an outage: every client's connection is closed
  and the port refuses) / ``start()`` again on the same port. ``stall()`` keeps every connection open
  but stops sending (a camera that hangs mid-stream); ``resume()`` sends again. ``frames_sent`` counts.
* ``SilentServer(port=None)``: accepts TCP connections and never sends a byte (a dead service behind a
  live port, or a firewall that swallows). ``url(scheme, path)`` builds a URL onto it;
  ``accepted`` counts connections.

Both are context managers and bind 127.0.0.1. ``port=None`` picks a free port at construction and
keeps it across restarts.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from .rtsp_server import free_port

BOUNDARY = "edgeinferframe"


def _jpeg(index: int, width: int, height: int) -> bytes:
    img = np.full((height, width, 3), 40, np.uint8)
    x = (index * 9) % max(1, width - 40)
    cv2.rectangle(img, (x, height // 3), (x + 40, height // 3 + 40), (30, 200, 240), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class MjpegServer:
    """An HTTP MJPEG camera that can go away, come back on the same port, or stall mid-stream."""

    def __init__(self, port: int | None = None, width: int = 320, height: int = 240, fps: int = 15,
                 host: str = "127.0.0.1") -> None:
        self.host, self.width, self.height, self.fps = host, width, height, fps
        self.port = port if port is not None else free_port(host)
        self.frames_sent = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                with server._lock:
                    server._clients.append(self.connection)
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                index = 0
                try:
                    while not server._stopping.is_set():
                        if not server._flowing.is_set():  # stalled: the connection stays open, silent
                            server._flowing.wait(0.1)
                            continue
                        data = _jpeg(index, server.width, server.height)
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        server.frames_sent += 1
                        index += 1
                        server._stopping.wait(1.0 / server.fps)  # the camera's frame rate
                except OSError:
                    pass  # the client went away, or stop() closed the connection

        return Handler

    def start(self) -> MjpegServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        ThreadingHTTPServer.allow_reuse_address = True
        httpd = ThreadingHTTPServer((self.host, self.port), self._handler())
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:  # an outage: open streams break now, not when the next frame is due
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.resume()
        self.stop()


class SilentServer:
    """Accepts TCP connections and never sends anything; holds them open until ``stop()``."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.accepted = 0
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def url(self, scheme: str = "rtsp", path: str = "/cam") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def start(self) -> SilentServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        sock.settimeout(0.1)
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)  # read nothing, send nothing
            self.accepted += 1

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for c in self._conns:
            c.close()
        self._conns.clear()

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
