"""Signed model packages on the real demo package: keygen, sign, verify, and the attacks they stop.

Each refusal goes through the installed `edgeinfer model verify` (exit 2, one line naming the reason);
the tampered package's sha256s are fixed up, so only the signature can catch it.
"""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from edgeinfer.core.errors import ModelError
from edgeinfer.core.modelpkg import load_package, sha256_file
from edgeinfer.core.modelpkg.signing import (
    SIGNATURE_NAME,
    check_not_older,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_package,
    verify_signature,
)

from ..conftest import run_cli


@pytest.fixture
def pkg(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> Path:
    target = tmp_path / "pkg"
    shutil.copytree(demo_pkgs[0], target)
    return target


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path / "keys")
    return pair.private, pair.public


def _manifest(pkg: Path) -> dict:
    return yaml.safe_load((pkg / "manifest.yaml").read_text())


def _write_manifest(pkg: Path, data: dict) -> None:
    (pkg / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _refused(result, reason: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and reason in err[0], result.stderr
    assert "ok   load" not in result.stdout  # an untrusted model is never loaded


def test_keygen_sign_verify_via_cli(pkg: Path, tmp_path: Path) -> None:
    keys = tmp_path / "k"
    made = run_cli("model", "keygen", "--out", str(keys))
    assert made.returncode == 0, made.stderr
    priv, pub = keys / "model-signing.key", keys / "model-signing.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in priv.read_bytes() and b"BEGIN PUBLIC KEY" in pub.read_bytes()
    again = run_cli("model", "keygen", "--out", str(keys))
    assert again.returncode == 2 and "already exists" in again.stderr  # a key is never overwritten

    r = run_cli("model", "sign", str(pkg), "--key", str(priv))
    assert r.returncode == 0, r.stderr
    doc = json.loads((pkg / SIGNATURE_NAME).read_text())
    assert doc["algorithm"] == "ed25519" and doc["package"] == "blazeface-full-range" and doc["version"] == "1.0.0"
    assert f"key id {doc['key_id']}" in made.stdout  # sha256 of the raw public key, as keygen printed it

    r = run_cli("model", "verify", str(pkg), "--trust", str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   signature" in r.stdout and "ok   warm-up" in r.stdout


def test_tampered_model_with_fixed_sha256_is_refused(pkg: Path, keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    sign_package(pkg, load_private_key(priv))
    model = pkg / "model.onnx"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    model.write_bytes(bytes(raw))
    data = _manifest(pkg)
    data["files"][0]["sha256"] = sha256_file(model)
    _write_manifest(pkg, data)
    load_package(pkg, verify=True)  # the sha256s agree again: only the signature can tell

    _refused(run_cli("model", "verify", str(pkg), "--trust", str(pub)), "the package was changed after signing")


def test_changed_manifest_value_is_refused(pkg: Path, keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    sign_package(pkg, load_private_key(priv))
    data = _manifest(pkg)
    data["decoder"]["score_threshold"] = 0.01
    _write_manifest(pkg, data)
    check = verify_signature(pkg, [load_public_key(pub)])
    assert not check.ok and "changed after signing" in check.detail


def test_another_key_is_refused(pkg: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    other = generate_keypair(tmp_path / "other")
    sign_package(pkg, load_private_key(priv))
    sign_package(pkg, load_private_key(other.private))  # re-signed: a valid signature, by a key nobody trusts
    _refused(run_cli("model", "verify", str(pkg), "--trust", str(pub)), "which is not trusted")
    # trusting both keys accepts it: --trust repeats
    r = run_cli("model", "verify", str(pkg), "--trust", str(pub), "--trust", str(other.public))
    assert r.returncode == 0, r.stdout + r.stderr


def test_stripped_signature_is_refused_when_keys_are_trusted(pkg: Path, keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    sign_package(pkg, load_private_key(priv))
    (pkg / SIGNATURE_NAME).unlink()
    _refused(run_cli("model", "verify", str(pkg), "--trust", str(pub)), "package is unsigned")
    r = run_cli("model", "verify", str(pkg))  # no --trust: the existing checks only, as before
    assert r.returncode == 0, r.stdout + r.stderr


def test_signature_of_another_package_is_refused(pkg: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    key = load_private_key(priv)
    other = tmp_path / "other"
    shutil.copytree(pkg, other)
    data = _manifest(other)
    data["name"] = "another-model"
    _write_manifest(other, data)
    sign_package(other, key)
    shutil.copyfile(other / SIGNATURE_NAME, pkg / SIGNATURE_NAME)
    _refused(run_cli("model", "verify", str(pkg), "--trust", str(pub)), "is for package another-model 1.0.0")
    # relabelled to claim this package: the signature itself still does not match
    doc = json.loads((pkg / SIGNATURE_NAME).read_text())
    doc["package"] = "blazeface-full-range"
    (pkg / SIGNATURE_NAME).write_text(json.dumps(doc))
    check = verify_signature(pkg, [load_public_key(pub)])
    assert not check.ok and "changed after signing" in check.detail


def test_reformatted_manifest_still_verifies(pkg: Path, keys: tuple[Path, Path]) -> None:
    priv, pub = keys
    sign_package(pkg, load_private_key(priv))
    before = (pkg / "manifest.yaml").read_text()
    data = _manifest(pkg)
    (pkg / "manifest.yaml").write_text("# reformatted by hand\n" + yaml.safe_dump(
        data, sort_keys=True, default_flow_style=True, width=60, indent=4))
    assert (pkg / "manifest.yaml").read_text() != before and _manifest(pkg) == data
    r = run_cli("model", "verify", str(pkg), "--trust", str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   signature" in r.stdout


def test_signed_zip(pkg: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    zpath = tmp_path / "pkg.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(pkg.iterdir()):
            zf.write(f, f"blazeface/{f.name}")  # with a top-level folder, as `zip -r` of a folder makes
    r = run_cli("model", "sign", str(zpath), "--key", str(priv))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(zpath) as zf:
        assert f"blazeface/{SIGNATURE_NAME}" in zf.namelist()
    r = run_cli("model", "verify", str(zpath), "--trust", str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   signature" in r.stdout


def test_replay_of_an_older_signed_version(pkg: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    key, trusted = load_private_key(priv), [load_public_key(pub)]
    newer = tmp_path / "newer"
    shutil.copytree(pkg, newer)
    data = _manifest(newer)
    data["version"] = "1.2.0"
    _write_manifest(newer, data)
    sign_package(pkg, key)
    sign_package(newer, key)
    assert verify_signature(pkg, trusted).ok and verify_signature(newer, trusted).ok  # both genuinely signed

    running = load_package(newer).manifest.version
    old = load_package(pkg).manifest.version
    with pytest.raises(ModelError, match=r"1\.0\.0 is older than the running 1\.2\.0"):
        check_not_older(old, running)
    check_not_older(old, running, allow_downgrade=True)
    check_not_older(running, old)  # an upgrade
    check_not_older(running, running)  # a re-deploy of the same version
    check_not_older(old, None)  # nothing running yet
    with pytest.raises(ModelError, match="older"):
        check_not_older("1.2.0-rc.1", "1.2.0")  # a pre-release sorts before its release
    with pytest.raises(ModelError, match="semantic"):
        check_not_older("latest", "1.0.0")
