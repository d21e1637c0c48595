"""IoT Edge model delivery under faults, with the real downloader against a real HTTPS file server and
real (tmpfs) file systems: rejected deliveries never cost the active or the last-good model, a download
that cannot fit is refused before a byte is written, and a disk that fills mid-download leaves no .part."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.azure.errors import DeliveryError
from edgeinfer.azure.model_download import ModelDownloader
from edgeinfer.azure.modelref import ModelRef
from edgeinfer.core.remoteconfig import RemotePolicy
from tests.azure.files_server import FileServer, Seen
from tests.azure.packages import sha256
from tests.telemetry.pki import Pki

from ..azure.conftest import files, pki

__all__ = ["files", "pki"]  # fixtures shared with the azure tests
KiB, MiB = 1024, 1024**2
Mount = Callable[[str], Path]


@dataclass
class StreamingFileServer(FileServer):
    """The azure tests' file server, plus paths served with chunked transfer encoding: no Content-Length, as
    a streaming proxy or a generated download sends them."""

    chunked: set[str] = field(default_factory=set)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        server = self

        class Handler(base):  # type: ignore[misc,valid-type]
            def do_GET(self) -> None:
                if self.path not in server.chunked:
                    return super().do_GET()
                body = server.files[self.path]
                server.seen.append(Seen(self.path, self.headers.get("Range"), 200))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i in range(0, len(body), 64 * KiB):
                        chunk = body[i:i + 64 * KiB]
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client gave up (disk full): expected here
                    self.close_connection = True
                return None

        return Handler


@pytest.fixture
def streaming(pki: Pki) -> Iterator[StreamingFileServer]:
    server = StreamingFileServer(pki).start()
    yield server
    server.stop()


@pytest.fixture
def tmpfs() -> Iterator[Mount]:
    """``mount(size) -> dir``: a fresh tmpfs of that size (``"2m"``), unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("disk-full tests mount a small tmpfs, which needs root")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix="ei-full-"))
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            d.rmdir()
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        mounted.append(d)
        return d

    try:
        yield mount
    finally:
        for d in mounted:
            subprocess.run(["umount", "-l", str(d)], check=False)
            d.rmdir()


def downloader_at(root: Path, pki: Pki, **kw: Any) -> ModelDownloader:
    return ModelDownloader(root, ssl_context=ssl.create_default_context(cafile=str(pki.ca)), chunk_bytes=64 * KiB,
                           timeout_s=10, attempts=2, policy=RemotePolicy(model_hosts=["127.0.0.1"]), **kw)


def ref_for(server: FileServer, path: str, data: bytes, **kw: Any) -> ModelRef:
    server.files[path] = data
    return ModelRef(name=path.strip("/").replace("/", "-"), version="1", uri=server.url(path), sha256=sha256(data),
                    **kw)


def blob(n: int, tag: int = 0) -> bytes:
    """``n`` incompressible bytes, different per tag."""
    return (bytes([tag]) + os.urandom(n))[:n]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "retained.json"]


# -- what stays on disk -----------------------------------------------------------------------------
def test_three_rejected_deliveries_keep_the_active_and_last_good_models(tmp_path: Path, pki: Pki,
                                                                        files: FileServer) -> None:
    root = tmp_path / "models"
    d = downloader_at(root, pki)
    last_good = d.fetch(ref_for(files, "/m/v1.zip", blob(100 * KiB, 1)))
    active = d.fetch(ref_for(files, "/m/v2.zip", blob(100 * KiB, 2)))
    d.retain([active, last_good])  # what the runtime does once v2 runs
    rejected = [d.fetch(ref_for(files, f"/m/bad{i}.zip", blob(100 * KiB, 10 + i))) for i in range(5)]
    assert active.is_file() and last_good.is_file(), "rejected deliveries pruned the rollback models"
    assert [p.is_file() for p in rejected] == [False, False, True, True, True], "the others stay bounded (keep=3)"

    # a restart (a new downloader on the same folder) while the network is down still has both
    files.stop()
    again = downloader_at(root, pki)
    assert again.retained == {active.parent, last_good.parent}
    v1 = ModelRef(name="v1", version="1", uri=files.url("/m/v1.zip"), sha256=sha256(last_good.read_bytes()))
    assert again.fetch(v1) == last_good, "the last-good model is served from disk, offline"
    assert again.prune() == [] and active.is_file()


def test_a_newer_swap_releases_the_old_last_good(tmp_path: Path, pki: Pki, files: FileServer) -> None:
    d = downloader_at(tmp_path / "models", pki, keep=1)
    v1 = d.fetch(ref_for(files, "/m/v1.zip", blob(10 * KiB, 1)))
    d.retain([v1])  # v1 runs
    v2 = d.fetch(ref_for(files, "/m/v2.zip", blob(10 * KiB, 2)))
    d.retain([v2, v1])  # v2 runs, v1 is last-good
    v3 = d.fetch(ref_for(files, "/m/v3.zip", blob(10 * KiB, 3)))
    junk = d.fetch(ref_for(files, "/m/junk.zip", blob(10 * KiB, 4)))
    assert not v3.exists() and junk.is_file(), "keep=1: only the newest unretained download stays"
    assert d.retain([junk, v2]) == [] and v1.is_file(), "junk runs now: v1 is the one unretained download kept"
    v4 = d.fetch(ref_for(files, "/m/v4.zip", blob(10 * KiB, 5)))
    assert not v1.exists() and v4.is_file() and v2.is_file() and junk.is_file(), "v1 went as any other download"


def test_fetch_keep_protects_models_the_runtime_has_not_retained(tmp_path: Path, pki: Pki,
                                                                 files: FileServer) -> None:
    d = downloader_at(tmp_path / "models", pki, keep=1)
    running = d.fetch(ref_for(files, "/m/run.zip", blob(10 * KiB, 1)))
    for i in range(3):
        d.fetch(ref_for(files, f"/m/new{i}.zip", blob(10 * KiB, 2 + i)), keep=[running])
    assert running.is_file()
    assert len([p for p in d.root.iterdir() if p.is_dir()]) == 2, "the kept one and the newest download"


# -- free space -------------------------------------------------------------------------------------
def test_a_download_bigger_than_the_free_space_is_refused_before_writing(tmpfs: Mount, pki: Pki,
                                                                         files: FileServer) -> None:
    mnt = tmpfs("2m")
    d = downloader_at(mnt / "models", pki, free_margin_bytes=64 * KiB)
    data = blob(3 * MiB)
    with pytest.raises(DeliveryError) as err:  # Content-Length says 3 MiB: refused after the headers
        d.fetch(ref_for(files, "/m/big.onnx", data))
    msg = str(err.value)
    assert "\n" not in msg and "needs 3.4 MiB free" in msg and "only 2.0 MiB free" in msg, msg
    assert leftovers(mnt) == [] and shutil.disk_usage(mnt).used < 64 * KiB
    assert len(files.seen) == 1

    with pytest.raises(DeliveryError, match="nothing was written"):  # the twin's size: refused before connecting
        d.fetch(ref_for(files, "/m/big2.onnx", data, size=len(data)))
    assert len(files.seen) == 1 and leftovers(mnt) == []


def test_the_margin_is_part_of_the_check(tmpfs: Mount, pki: Pki, files: FileServer) -> None:
    mnt = tmpfs("2m")
    ref = ref_for(files, "/m/m.onnx", blob(1536 * KiB))
    with pytest.raises(DeliveryError, match=r"needs 17\.6 MiB free"):  # default: 10 % + 16 MiB
        downloader_at(mnt / "a", pki).fetch(ref)
    assert downloader_at(mnt / "a", pki, free_margin_bytes=64 * KiB).fetch(ref).stat().st_size == 1536 * KiB


def test_old_unretained_downloads_make_room(tmpfs: Mount, pki: Pki, files: FileServer) -> None:
    mnt = tmpfs("2m")
    d = downloader_at(mnt / "models", pki, free_margin_bytes=64 * KiB)
    active = d.fetch(ref_for(files, "/m/a.onnx", blob(600 * KiB, 1)))
    stale = d.fetch(ref_for(files, "/m/b.onnx", blob(600 * KiB, 2)))
    d.retain([active])
    new = d.fetch(ref_for(files, "/m/c.onnx", blob(900 * KiB, 3)))
    assert active.is_file() and new.is_file() and not stale.exists()


def test_a_disk_that_fills_mid_download_leaves_no_part(tmpfs: Mount, pki: Pki,
                                                       streaming: StreamingFileServer) -> None:
    mnt = tmpfs("1m")
    d = downloader_at(mnt / "models", pki, free_margin_bytes=64 * KiB)
    streaming.chunked.update({"/m/huge.onnx", "/m/small.onnx"})
    with pytest.raises(DeliveryError) as err:  # no Content-Length, no twin size: nothing to check beforehand
        d.fetch(ref_for(streaming, "/m/huge.onnx", blob(3 * MiB)))
    msg = str(err.value)
    assert "\n" not in msg and "disk full" in msg and "partial file was removed" in msg, msg
    assert leftovers(mnt) == [] and shutil.disk_usage(mnt).used < 64 * KiB, "the .part is gone, the space back"
    assert len(streaming.seen) == 1, "a full disk is not retried"

    small = blob(200 * KiB, 7)  # the disk is usable again at once
    assert d.fetch(ref_for(streaming, "/m/small.onnx", small)).read_bytes() == small
