"""`edgeinfer run` as a subprocess under faults: one-line errors and non-zero exits, shutdown within its bound."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..conftest import run_cli
from .packages import edited_package, wrong_dtype


def test_a_model_whose_manifest_dtype_is_wrong_is_a_one_line_error(demo_pkgs: tuple[Path, Path],
                                                                    demo_media: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    bad = edited_package(demo_pkgs[0], tmp_path / "bad", wrong_dtype)
    r = run_cli("run", "--model", str(bad), "--source", str(demo_media[0]), "--quiet")
    assert r.returncode == 2, r.stderr
    assert "failed its warm-up inference" in r.stderr and "input.dtype" in r.stderr
    assert "Traceback" not in r.stderr
    v = run_cli("model", "verify", str(bad))
    assert v.returncode == 2 and "warm-up" in v.stdout + v.stderr


def test_a_run_that_read_no_good_frame_exits_non_zero(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    r = run_cli("run", "--model", str(demo_pkgs[0]), "--source", str(frames), "--quiet", "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no frame was inferred" in r.stderr and "1 bad frame" in r.stderr and "Traceback" not in r.stderr


def _silent_broker() -> tuple[socket.socket, threading.Thread]:
    """A TCP server that accepts MQTT connections and never answers: telemetry can never be delivered."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def _start_run(demo_pkgs: tuple[Path, Path], out: Path, port: int, drain: float) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("edgeinfer")
    return subprocess.Popen([str(exe), "run", "--model", str(demo_pkgs[0]), "--source", "synthetic:160x120",
                             "--out", str(out), "--quiet", "--telemetry", f"mqtt://127.0.0.1:{port}",
                             "--telemetry-mode", "results", "--drain-timeout", str(drain)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for_results(out: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
        f = out / "results.jsonl"
        if f.exists() and f.stat().st_size > 0:
            return
        tick.wait(0.05)
    raise AssertionError("the run produced no results")


def test_sigterm_ends_the_run_within_the_drain_bound(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    srv, _ = _silent_broker()
    try:
        proc = _start_run(demo_pkgs, tmp_path / "out", srv.getsockname()[1], drain=3.0)
        _wait_for_results(tmp_path / "out", proc)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 0, err
        assert 2.5 <= took <= 3.0 + 5.0, f"ended {took:.1f} s after SIGTERM with drain_timeout_s 3"
        assert "left in the outbox" in err or "not delivered" in err
    finally:
        srv.close()


def test_a_second_sigterm_during_the_drain_exits_at_once(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    srv, _ = _silent_broker()
    try:
        proc = _start_run(demo_pkgs, tmp_path / "out", srv.getsockname()[1], drain=60.0)
        _wait_for_results(tmp_path / "out", proc)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.stderr is not None
        # the drain has begun once the run says it stops; then the second signal must end it at once
        deadline = time.monotonic() + 20
        seen = b""
        while b"stopping" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else b""
            if proc.poll() is not None:
                break
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(10)
        assert time.monotonic() - t0 < 3.0 and code == 128 + signal.SIGTERM
    finally:
        srv.close()


def test_a_camera_that_is_not_there_is_waited_for_until_sigterm(demo_pkgs: tuple[Path, Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    exe = Path(sys.executable).with_name("edgeinfer")
    proc = subprocess.Popen([str(exe), "run", "--model", str(demo_pkgs[0]), "--source", f"rtsp://127.0.0.1:{port}/cam",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"waiting for source" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read1(4096)
    assert b"waiting for source" in seen, seen.decode(errors="replace")
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(20) == 0
