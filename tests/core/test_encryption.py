"""Encrypted model packages: AES-256-GCM over the model file, decrypted in memory and loaded from bytes.

The real BlazeFace packages (ONNX through onnxruntime, TFLite through LiteRT) are encrypted, loaded and run;
wrong keys, changed bytes and moved ciphertexts are refused with one line; the key file must be private."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgeinfer.core.backends import BackendOptions, open_backend, registry
from edgeinfer.core.backends.onnxruntime import OnnxRuntimeBackend
from edgeinfer.core.errors import ConfigError, ModelError
from edgeinfer.core.model import load_model
from edgeinfer.core.modelpkg import load_package
from edgeinfer.core.modelpkg.cryptconfig import DecryptionConfig
from edgeinfer.core.modelpkg.crypto import encrypt_package
from edgeinfer.core.modelpkg.keys import key_id, key_provider, parse_key, read_key_file, write_key_file
from edgeinfer.core.modelpkg.verify import verify_package
from tests.conftest import run_cli

CPU = BackendOptions(device="cpu")


def private_key(path: Path, key: bytes | None = None) -> bytes:
    key = key or os.urandom(32)
    path.write_bytes(key)
    path.chmod(0o600)
    return key


def encrypted_copy(src: Path, dst: Path, key: bytes) -> Path:
    shutil.copytree(src, dst)
    encrypt_package(dst, key)
    return dst


def blank_outputs(model) -> dict[str, np.ndarray]:
    tensor, _ = model.preprocessor(np.full((480, 640, 3), 90, np.uint8))
    return model.infer(tensor[None])[0]


@pytest.mark.parametrize("which", [0, 1], ids=["onnx", "tflite"])
def test_encrypted_package_runs_like_the_clear_one(demo_pkgs: tuple[Path, Path], tmp_path: Path, which: int) -> None:
    clear_pkg = load_package(demo_pkgs[which])
    key = os.urandom(32)
    pkg_dir = encrypted_copy(demo_pkgs[which], tmp_path / "enc", key)
    pkg = load_package(pkg_dir)  # the sha256 of the ciphertext checks without a key
    m = pkg.manifest
    assert m.encryption is not None and m.encryption.algorithm == "aes-256-gcm" and m.encryption.key_id == key_id(key)
    blob = pkg.model_path.read_bytes()
    clear = clear_pkg.model_path.read_bytes()
    assert m.file(m.model_file).sha256 == hashlib.sha256(blob).hexdigest() and len(blob) == len(clear) + 28
    assert clear[:4096] not in blob and clear[-4096:] not in blob
    assert yaml.safe_load((pkg_dir / "manifest.yaml").read_text())["encryption"]["key_id"] == key_id(key)
    model = load_model(pkg, CPU, keys=lambda _kid: key)
    reference = load_model(clear_pkg, CPU)
    try:
        model.warmup(1)
        got, want = blank_outputs(model), blank_outputs(reference)
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    finally:
        model.close()
        reference.close()


def test_wrong_key_changed_byte_and_moved_ciphertext_are_refused(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    key = os.urandom(32)
    pkg_dir = encrypted_copy(demo_pkgs[0], tmp_path / "enc", key)
    with pytest.raises(ModelError, match=f"encrypted with key {key_id(key)}, the configured key is "):
        load_model(load_package(pkg_dir), CPU, keys=lambda _kid: os.urandom(32))
    with pytest.raises(ModelError, match=r"is encrypted .* no key provider"):
        load_model(load_package(pkg_dir), CPU)
    # one byte changed, the manifest's sha256 fixed up to match: authentication still fails
    tampered = tmp_path / "tampered"
    shutil.copytree(pkg_dir, tampered)
    blob = bytearray((tampered / "model.onnx").read_bytes())
    blob[len(blob) // 2] ^= 1
    (tampered / "model.onnx").write_bytes(bytes(blob))
    doc = yaml.safe_load((tampered / "manifest.yaml").read_text())
    doc["files"][0]["sha256"] = hashlib.sha256(blob).hexdigest()
    (tampered / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelError, match="does not decrypt with the configured key"):
        load_model(load_package(tampered), CPU, keys=lambda _kid: key)
    # the same ciphertext relabelled as another version (the name, version and file name are bound)
    moved = tmp_path / "moved"
    shutil.copytree(pkg_dir, moved)
    doc = yaml.safe_load((moved / "manifest.yaml").read_text())
    doc["version"] = "9.9.9"
    (moved / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelError, match="does not decrypt"):
        load_model(load_package(moved), CPU, keys=lambda _kid: key)


def test_zip_is_encrypted_without_unpacking_and_the_cache_holds_only_ciphertext(demo_pkgs: tuple[Path, Path],
                                                                                 tmp_path: Path) -> None:
    src = tmp_path / "pkg.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for p in demo_pkgs[0].iterdir():
            zf.write(p, f"blazeface/{p.name}")
        zf.writestr("blazeface/signature.json", "{}")
    key = os.urandom(32)
    done = encrypt_package(src, key, tmp_path / "enc.zip")
    assert done.dropped_signature and done.key_id == key_id(key)
    with zipfile.ZipFile(done.path) as zf:
        assert "blazeface/signature.json" not in zf.namelist()
    cache = tmp_path / "cache"
    model = load_model(load_package(done.path, cache=cache), CPU, keys=lambda _kid: key)
    model.warmup(1)
    model.close()
    head = (demo_pkgs[0] / "model.onnx").read_bytes()[:4096]
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert any(p.name == "model.onnx" for p in files)
    assert not [p for p in files if head in p.read_bytes()], "the clear model reached the unpack cache"


def test_encrypting_twice_is_refused_and_verify_checks_integrity_without_a_key(demo_pkgs: tuple[Path, Path],
                                                                             tmp_path: Path) -> None:
    key = os.urandom(32)
    pkg_dir = encrypted_copy(demo_pkgs[0], tmp_path / "enc", key)
    with pytest.raises(ModelError, match="already encrypted"):
        encrypt_package(pkg_dir, key)
    report = verify_package(load_package(pkg_dir))
    assert report.ok and report.checks[-1][0] == "encrypted" and "not loaded without its key" in report.checks[-1][2]
    full = verify_package(load_package(pkg_dir), keys=lambda _kid: key)
    assert full.ok and [c[0] for c in full.checks][-1] == "warm-up"
    wrong = verify_package(load_package(pkg_dir), keys=lambda _kid: os.urandom(32))
    assert not wrong.ok and wrong.first_failure().startswith("decrypt:")


def test_key_file_must_be_private_and_owned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.key"
    key = private_key(path)
    assert read_key_file(path) == key
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="mode 0640: group or others can read or change it -> chmod 600"):
        read_key_file(path)
    path.chmod(0o600)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(ConfigError, match="symlink is not accepted"):
        read_key_file(link)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(path).st_uid + 1)  # the service runs as another user
    with pytest.raises(ConfigError, match="not by the service user"):
        read_key_file(path)


def test_key_text_forms_and_new_key_files(tmp_path: Path) -> None:
    key = os.urandom(32)
    assert parse_key(key.hex().encode() + b"\n", "x") == key
    assert parse_key(base64.b64encode(key) + b"\n", "x") == key
    with pytest.raises(ConfigError, match="does not hold a 32-byte AES-256 key"):
        parse_key(b"too short", "x")
    new = write_key_file(tmp_path / "new.key")
    assert len(new) == 32 and (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ModelError, match="already exists"):
        write_key_file(tmp_path / "new.key")


def test_key_provider_follows_the_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "k"
    key = private_key(path)
    assert key_provider(DecryptionConfig(key_file=str(path)))("any") == key
    with pytest.raises(ModelError, match=r"no decryption key is configured -> set trust\.decryption"):
        key_provider(DecryptionConfig())("abc")
    with pytest.raises(ModelError, match="greengrass_secret works only in the Greengrass component"):
        key_provider(DecryptionConfig(greengrass_secret="arn:x"))("abc")
    given = key_provider(DecryptionConfig(greengrass_secret="s"), lambda s: (lambda _kid: key) if s.greengrass_secret
                         else None)
    assert given("abc") == key
    with pytest.raises(ValueError, match="give one key source, not key_file and greengrass_secret"):
        DecryptionConfig(key_file="/k", greengrass_secret="s")
    with pytest.raises(ValueError, match="iotedge_seal_key_file needs iotedge_wrapped_key"):
        DecryptionConfig(iotedge_seal_key_file="/k")


def test_no_engine_cache_for_an_encrypted_model_and_file_only_backends_refuse_bytes(
        demo_pkgs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = BackendOptions(device="cpu")
    cached = OnnxRuntimeBackend._provider_options("TensorrtExecutionProvider", opts, tmp_path / "m.onnx")
    clear = OnnxRuntimeBackend._provider_options("TensorrtExecutionProvider", opts, tmp_path / "m.onnx", False)
    assert cached["trt_engine_cache_enable"] is True and "trt_engine_cache_path" in cached
    assert clear["trt_engine_cache_enable"] is False and "trt_engine_cache_path" not in clear

    class FileOnly(OnnxRuntimeBackend):  # a backend that can only open files
        loads_bytes = False

    monkeypatch.setattr(registry, "backend_class", lambda name: FileOnly)
    with pytest.raises(ModelError, match="backend onnxruntime cannot load an encrypted model"):
        open_backend(demo_pkgs[0] / "model.onnx", "onnx", opts.model_copy(update={"name": "onnxruntime"}),
                     model_bytes=b"x")


def test_cli_encrypts_with_a_new_key_and_verifies_without_it(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    out, key = tmp_path / "enc", tmp_path / "model.key"
    done = run_cli("model", "encrypt", str(demo_pkgs[0]), "--new-key", str(key), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "key id " + key_id(key.read_bytes()) in done.stdout and key.stat().st_mode & 0o777 == 0o600
    assert load_package(demo_pkgs[0]).manifest.encryption is None, "--out leaves the source package clear"
    verify = run_cli("model", "verify", str(out))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "not loaded without its key" in verify.stdout
    again = run_cli("model", "encrypt", str(out), "--key", str(key))
    assert again.returncode != 0 and "already encrypted" in again.stderr
    both = run_cli("model", "encrypt", str(out), "--key", str(key), "--new-key", str(tmp_path / "x"))
    assert both.returncode != 0 and "exactly one of --key and --new-key" in both.stderr
