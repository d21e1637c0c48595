"""The model key wrapped by the IoT Edge security daemon: sealed and unwrapped through the workload API (the
fake serves encrypt/decrypt as edgelet-http-workload does, over its Unix socket), and the module process
running an encrypted package with it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.azure.workloadkeys import WorkloadKeys
from edgeinfer.core.errors import EdgeInferError, ModelError
from edgeinfer.core.modelpkg.cryptconfig import DecryptionConfig
from edgeinfer.core.modelpkg.crypto import encrypt_package
from edgeinfer.core.modelpkg.keys import key_id
from tests.azure.conftest import GENERATION, MODULE, StartModule
from tests.azure.test_module_runtime import desired_for
from tests.azure.workload import FakeWorkload
from tests.conftest import LocalSettings, trusting_operator


@pytest.fixture
def workload(short_dir: Path) -> Any:
    w = FakeWorkload(short_dir / "wl.sock", "", MODULE, GENERATION).start()
    yield w
    w.stop()


def clear_key(path: Path, key: bytes) -> Path:
    path.write_bytes(key.hex().encode())
    path.chmod(0o600)
    return path


def test_seal_then_unwrap_and_the_clear_key_is_gone(workload: FakeWorkload, tmp_path: Path) -> None:
    key = os.urandom(32)
    seal, wrapped = clear_key(tmp_path / "model.key", key), tmp_path / "keys" / "model.key.wrapped"
    keys = WorkloadKeys(workload.uri, MODULE, GENERATION, "2019-01-30")
    provider = keys(DecryptionConfig(iotedge_wrapped_key=str(wrapped), iotedge_seal_key_file=str(seal)))
    assert provider is not None and not seal.exists(), "sealed at the first load: the clear key is deleted"
    assert stat.S_IMODE(wrapped.stat().st_mode) == 0o600
    doc = json.loads(wrapped.read_text())
    assert key.hex() not in wrapped.read_text() and doc["key_id"] == key_id(key)
    assert provider(key_id(key)) == key
    ops = [r.path.rsplit("/", 1)[1] for r in workload.requests]
    assert ops == ["encrypt", "decrypt", "decrypt"], "the seal is checked before the clear copy goes"
    assert all(r.query == {"api-version": ["2019-01-30"]} for r in workload.requests)
    assert keys(DecryptionConfig()) is None, "no iotedge_wrapped_key: not this source"


def test_another_generation_cannot_unwrap_and_says_how_to_reseal(workload: FakeWorkload, tmp_path: Path) -> None:
    key = os.urandom(32)
    wrapped = tmp_path / "wrapped"
    WorkloadKeys(workload.uri, MODULE, GENERATION, "2019-01-30").seal(clear_key(tmp_path / "k", key), wrapped)
    with pytest.raises(ModelError, match=r"sealed by module edgeinfer generation gen-7, this is edgeinfer generation "
                       r"gen-8.* -> seal the key again"):
        WorkloadKeys(workload.uri, MODULE, "gen-8", "2019-01-30").unwrap(wrapped)
    doc = json.loads(wrapped.read_text())
    doc["generation"] = "gen-8"  # an edited record: the daemon's associated data still says gen-7
    wrapped.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="workload API refused decrypt: HTTP 500 could not decrypt"):
        WorkloadKeys(workload.uri, MODULE, "gen-8", "2019-01-30").unwrap(wrapped)
    wrapped.chmod(0o644)
    with pytest.raises(EdgeInferError, match="mode 0644: group or others can read"):
        WorkloadKeys(workload.uri, MODULE, GENERATION, "2019-01-30").unwrap(wrapped)


def test_a_daemon_that_is_not_there_is_one_line_and_keeps_the_clear_key(tmp_path: Path, short_dir: Path) -> None:
    seal = clear_key(tmp_path / "k", os.urandom(32))
    keys = WorkloadKeys(f"unix://{short_dir}/nobody.sock", MODULE, GENERATION, "2019-01-30", timeout_s=2)
    with pytest.raises(ModelError, match=r"workload API did not answer encrypt .* -> check that aziot-edged runs"):
        keys.seal(seal, tmp_path / "wrapped")
    assert seal.exists() and not (tmp_path / "wrapped").exists(), "nothing lost, nothing half-written"
    with pytest.raises(ModelError, match="is not a unix socket"):
        WorkloadKeys("http://127.0.0.1:15580", MODULE, GENERATION, "2019-01-30")


def test_the_module_runs_an_encrypted_package_with_the_sealed_key(
        edge_module: StartModule, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], tmp_path: Path,
        local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    key = os.urandom(32)
    pkg = encrypt_package(demo_pkgs[0], key, tmp_path / "encrypted").path
    seal, wrapped = clear_key(tmp_path / "model.key", key), tmp_path / "model.key.wrapped"
    local_settings({**trusting_operator(tmp_path_factory.getbasetemp()), "trust": {"decryption": {
        "iotedge_wrapped_key": str(wrapped), "iotedge_seal_key_file": str(seal)}}})
    m = edge_module(desired_for(pkg, demo_media[0]))
    reported = m.wait_ready()
    assert reported["config"]["status"] == "applied" and reported["model"]["name"] == "blazeface-full-range"
    assert not seal.exists() and wrapped.exists(), "the module sealed the key and deleted the clear copy"
    ops = [r.path.rsplit("/", 1)[1] for r in m.workload.requests if r.path.endswith(("crypt",))]
    assert ops[:2] == ["encrypt", "decrypt"] and "decrypt" in ops[2:]
    assert key.hex() not in m.log_text()
    assert m.stop() == 0
    clear = hashlib.sha256((demo_pkgs[0] / "model.onnx").read_bytes()).hexdigest()
    written = [p for p in [*m.state_dir.rglob("*"), *pkg.rglob("*")] if p.is_file()]
    assert written and not [p for p in written if hashlib.sha256(p.read_bytes()).hexdigest() == clear], \
        "the clear model is nowhere in the module's state or the package it ran"
