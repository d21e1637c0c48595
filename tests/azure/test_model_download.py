"""Model delivery: the real downloader against a local HTTPS server (resume, limits, sha256, 404, TLS), and
the module swapping to a model named in its twin, refusing corrupted and missing ones."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.azure.errors import DeliveryError
from edgeinfer.azure.model_download import ModelDownloader
from edgeinfer.azure.modelref import ModelRef
from edgeinfer.core.remoteconfig import RemotePolicy
from tests.azure.conftest import StartModule, model_url
from tests.azure.files_server import FileServer
from tests.azure.packages import package_zip, sha256
from tests.azure.test_module_runtime import config_state, desired_for
from tests.telemetry.pki import Pki

BLOB = bytes(range(256)) * 2048  # 512 KiB
LOCAL = RemotePolicy(model_hosts=["127.0.0.1"])  # the local settings of a device whose models come from here


@pytest.fixture
def downloader(tmp_path: Path, pki: Pki) -> ModelDownloader:
    return ModelDownloader(tmp_path / "models", ssl_context=ssl.create_default_context(cafile=str(pki.ca)),
                           chunk_bytes=64 * 1024, timeout_s=10, policy=LOCAL)


def ref_for(files: FileServer, path: str, data: bytes, **kw: Any) -> ModelRef:
    files.files[path] = data
    return ModelRef(name="blob", version="1", uri=files.url(path), sha256=kw.pop("sha", sha256(data)), **kw)


def test_download_verifies_and_reuses(downloader: ModelDownloader, files: FileServer) -> None:
    ref = ref_for(files, "/m/blob.onnx", BLOB)
    path = downloader.fetch(ref)
    assert path.read_bytes() == BLOB and path.name == "blob.onnx" and path.parent.name == ref.sha256
    assert downloader.fetch(ref) == path
    assert len(files.seen) == 1, "a verified model on disk is not fetched again"


def test_download_resumes_with_a_range_request(downloader: ModelDownloader, files: FileServer) -> None:
    ref = ref_for(files, "/m/blob.zip", BLOB)
    files.cut_after["/m/blob.zip"] = 200_000
    assert downloader.fetch(ref).read_bytes() == BLOB
    assert [(s.status, s.range) for s in files.seen] == [(200, None), (206, "bytes=200000-")]


def test_download_starts_over_when_the_server_ignores_ranges(downloader: ModelDownloader, files: FileServer) -> None:
    ref = ref_for(files, "/m/blob.bin", BLOB)
    files.cut_after["/m/blob.bin"] = 100_000
    files.no_range.add("/m/blob.bin")
    assert downloader.fetch(ref).read_bytes() == BLOB
    assert [(s.status, s.range) for s in files.seen] == [(200, None), (200, "bytes=100000-")]


def test_sha256_mismatch_is_refused_and_nothing_stays(downloader: ModelDownloader, files: FileServer) -> None:
    ref = ref_for(files, "/m/blob.zip", BLOB, sha="ab" * 32)
    with pytest.raises(DeliveryError, match="sha256 mismatch"):
        downloader.fetch(ref)
    assert not any(p.is_file() for p in downloader.root.rglob("*"))


def test_404_is_not_retried(downloader: ModelDownloader, files: FileServer, caplog: pytest.LogCaptureFixture) -> None:
    ref = ModelRef(name="gone", version="1", uri=files.url("/m/gone.zip"), sha256="ab" * 32)
    with pytest.raises(DeliveryError) as err:
        downloader.fetch(ref)
    assert str(err.value).startswith("model gone 1: download from 127.0.0.1 failed (see the module log) -> ")
    assert "answered HTTP 404" in caplog.text, "the module log says why"
    assert len(files.seen) == 1


def test_size_limits(tmp_path: Path, pki: Pki, files: FileServer) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    small = ModelDownloader(tmp_path / "a", max_bytes=100_000, ssl_context=ctx, policy=LOCAL)
    with pytest.raises(DeliveryError, match="over the 100000-byte limit"):
        small.fetch(ref_for(files, "/m/big.zip", BLOB))
    declared = ModelDownloader(tmp_path / "b", ssl_context=ctx, policy=LOCAL)
    with pytest.raises(DeliveryError, match="over the 1000-byte limit"):
        declared.fetch(ref_for(files, "/m/big2.zip", BLOB, size=1000))


def test_untrusted_tls_is_refused(tmp_path: Path, files: FileServer, caplog: pytest.LogCaptureFixture) -> None:
    plain = ModelDownloader(tmp_path / "c", ssl_context=ssl.create_default_context(), policy=LOCAL)
    with pytest.raises(DeliveryError, match=r"download from 127\.0\.0\.1 failed \(see the module log\)"):
        plain.fetch(ref_for(files, "/m/blob.zip", BLOB))
    assert "TLS verification of 127.0.0.1 failed" in caplog.text
    assert "attempt 1/" not in caplog.text, "a TLS refusal is not retried"
    assert files.seen == []


def test_old_models_are_pruned(downloader: ModelDownloader, files: FileServer) -> None:
    paths = [downloader.fetch(ref_for(files, f"/m/{i}.bin", BLOB + bytes([i]))) for i in range(5)]
    assert [p.is_file() for p in paths] == [False, False, True, True, True]


def test_module_swaps_to_a_delivered_model_and_refuses_bad_ones(
        edge_module: StartModule, files: FileServer, demo_pkgs: tuple[Path, Path],
        demo_media: tuple[Path, Path]) -> None:
    v2, v3 = package_zip(demo_pkgs[0], "2.0.0"), package_zip(demo_pkgs[0], "3.0.0")
    files.files.update({"/models/faces-2.zip": v2, "/models/faces-3.zip": v3, "/models/faces-3b.zip": v3})
    files.cut_after["/models/faces-2.zip"] = 300_000
    m = edge_module(desired_for(demo_pkgs[0], demo_media[0]))
    assert m.wait_ready()["model"]["version"] == "1.0.0"

    delivery = {"path": None, "name": "faces", "version": "2", "uri": model_url("/models/faces-2.zip"),
                "sha256": sha256(v2)}
    reported = config_state(m.hub, m.hub.patch_desired({"model": delivery}), "applied")
    assert reported["model"]["version"] == "2.0.0" and reported["state"] == "running"
    assert reported["delivery"] == {"status": "active", "name": "faces", "version": "2", "sha256": sha256(v2)}
    assert [(s.status, s.range) for s in files.seen if s.path == "/models/faces-2.zip"] == [
        (200, None), (206, "bytes=300000-")], "the download resumed"

    corrupted = {"version": "3", "uri": model_url("/models/faces-3.zip"), "sha256": sha256(v2 + b"x")}
    reported = config_state(m.hub, m.hub.patch_desired({"model": corrupted}), "rejected")
    assert "sha256 mismatch" in reported["config"]["error"]
    assert reported["delivery"]["status"] == "failed" and reported["delivery"]["version"] == "3"
    assert reported["model"]["version"] == "2.0.0" and reported["running"], "the old model keeps running"

    missing = {"version": "4", "uri": model_url("/models/faces-4.zip"), "sha256": sha256(v3)}
    reported = config_state(m.hub, m.hub.patch_desired({"model": missing}), "rejected")
    assert "download from localhost failed" in reported["config"]["error"] and reported["model"]["version"] == "2.0.0"
    said = [reported["config"]["error"], reported["delivery"]["error"]]  # the texts (a sha256 may hold "404")
    assert not [t for t in said if "404" in t or "Not Found" in t], "the cloud learns it failed, not what the host said"

    fixed = {"version": "3", "uri": model_url("/models/faces-3b.zip"), "sha256": sha256(v3)}
    reported = config_state(m.hub, m.hub.patch_desired({"model": fixed}), "applied")
    assert reported["model"]["version"] == "3.0.0" and reported["delivery"]["status"] == "active"
    status, body = m.hub.invoke("getStats")
    assert status == 200 and body["model"]["version"] == "3.0.0"
    assert m.stop() == 0
