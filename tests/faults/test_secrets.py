"""Secrets never leave the device as text, and the device's own files are its alone (issue 11, item 4)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from edgeinfer.azure.twin import Desired, LastGood, clip
from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import SourceError
from edgeinfer.core.redact import RedactingFilter, redact
from edgeinfer.core.session import RunSession
from edgeinfer.core.telemetry.outbox import Outbox

SAS = "sv=2023-11-03&se=2027-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=AbCdEf%2BgHiJkLmNoPqRsTuVwXyZ0123456789%3D"
CASES = [
    (f"https://acct.blob.core.windows.net/models/m.zip?{SAS}", "AbCdEf", "acct.blob.core.windows.net/models/m.zip"),
    ("rtsp://admin:hunter2@10.0.0.7:554/cam", "hunter2", "rtsp://admin:***@10.0.0.7:554/cam"),
    ("https://hooks.example.com/alert?token=s3cr3t-t0ken&x=1", "s3cr3t-t0ken", "hooks.example.com/alert?token=***"),
    ("HostName=hub.azure-devices.net;DeviceId=d;SharedAccessKey=QmFzZTY0S2V5PT0=", "QmFzZTY0S2V5PT0",
     "HostName=hub.azure-devices.net;DeviceId=d"),
    ("SharedAccessSignature sr=hub%2Fdevices%2Fd&sig=abc123def456&se=1700000000", "abc123def456",
     "SharedAccessSignature ***"),
    ("https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIAX%2F2026&X-Amz-Signature=deadbeefcafe", "deadbeefcafe",
     "bucket.s3.amazonaws.com/k"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9", "Authorization: Bearer ***"),
]


@pytest.mark.parametrize("text, secret, kept", CASES)
def test_redact_removes_the_secret_and_keeps_what_helps(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out and kept in out, out


def test_plain_text_is_left_alone() -> None:
    for text in ("model blazeface 1.0.0 active", "/var/lib/edgeinfer/state", "rtsp://10.0.0.7/cam", "a=b&c=d"):
        assert redact(text) == text


def test_errors_logs_and_reported_text_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    url = CASES[0][0]
    err = SourceError(f"cannot open {url}", f"check {url}")
    assert "AbCdEf" not in str(err)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    record = logging.LogRecord("edgeinfer", logging.ERROR, __file__, 1, "download of %s failed", (url,), None)
    handler.filter(record)
    assert "AbCdEf" not in record.getMessage() and "sig=***" in record.getMessage()
    assert "AbCdEf" not in (clip(f"delivery failed: {url}") or "")


def test_a_session_status_never_carries_a_camera_password(demo_pkgs: tuple[Path, Path]) -> None:
    s = RunSession(EdgeInferConfig(model={"path": str(demo_pkgs[0])},
                                   source={"uri": "rtsp://admin:hunter2@127.0.0.1:9/cam"}))
    s.start()
    try:
        st = s.status()
        assert "hunter2" not in repr(st) and "hunter2" not in s.source_uri
    finally:
        s.stop(0)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_device_files_are_private_whatever_the_umask(tmp_path: Path, demo_pkgs: tuple[Path, Path],
                                                     demo_media: tuple[Path, Path]) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "state"
        s = RunSession(EdgeInferConfig(model={"path": str(demo_pkgs[0])}, source={"uri": str(demo_media[0])},
                                       state_dir=str(state), telemetry={"transport": f"file:{tmp_path / 'e'}"}))
        s.start()
        s.wait(20)
        s.stop(5)
        assert _mode(state) == 0o700
        for f in state.glob("outbox.db*"):
            assert _mode(f) == 0o600, f
        with Outbox(tmp_path / "other" / "outbox.db", 1 << 20, 1 << 16):
            assert _mode(tmp_path / "other" / "outbox.db") == 0o600
        lg = LastGood(tmp_path / "azure" / "last-good.json")
        lg.save(Desired({"model": {"uri": CASES[0][0]}}, 3))
        assert _mode(lg.path) == 0o600 and _mode(lg.path.parent) == 0o700
    finally:
        os.umask(old)
