"""Signed model packages: Ed25519 over the canonical manifest, and replay protection.

The signature covers the manifest's *data* (which lists every file's sha256, the name and the version),
serialised canonically: JSON with sorted keys, no whitespace, UTF-8. Reformatting ``manifest.yaml``
keeps a signature valid; changing any value (a file's sha256, the version, a label) breaks it. The
signature lives beside the manifest in ``signature.json`` and is not listed in the manifest's files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ModelError
from .package import parse_manifest
from .unzip import MANIFEST_NAME, plan_zip

log = logging.getLogger(__name__)

SIGNATURE_NAME = "signature.json"
ALGORITHM = "ed25519"
SIGNATURE_MAX_BYTES = 64 * 1024
# Domain separation: these bytes can never be mistaken for a signature over anything else the key signs.
_CONTEXT = b"edgeinfer-model-manifest-v1\n"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of checking a package's signature: a report row, or (``require``) a ModelError."""

    ok: bool
    detail: str
    key_id: str | None = None

    def row(self) -> tuple[str, bool, str]:
        """``("signature", ok, detail)``: the shape of ``VerifyReport.checks``."""
        return ("signature", self.ok, self.detail)

    def require(self) -> None:
        if not self.ok:
            raise ModelError(f"signature: {self.detail}", "install a package signed by a trusted key "
                             "(`edgeinfer model sign PKG --key KEY`), or trust its public key")


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def key_id(public_key: Ed25519PublicKey) -> str:
    """sha256 (hex) of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical_manifest(data: Any) -> bytes:
    """The manifest data as canonical JSON: sorted keys, no whitespace, UTF-8. Raises ModelError."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the manifest holds a value JSON cannot hold ({exc})",
                         "use plain strings, numbers, lists and mappings in manifest.yaml") from exc


def _manifest_data(text: str, where: str) -> tuple[Any, str, str]:
    """(raw data, name, version) of a manifest's YAML text; the manifest must be valid."""
    manifest = parse_manifest(text, where)
    return yaml.safe_load(text), manifest.name, manifest.version


def _payload(data: Any) -> bytes:
    return _CONTEXT + canonical_manifest(data)


# -- keys -------------------------------------------------------------------------------------------------


def generate_keypair(out_dir: Path, name: str = "model-signing") -> KeyPair:
    """Write ``<name>.key`` (PKCS#8 PEM, mode 0600) and ``<name>.pub`` (SubjectPublicKeyInfo PEM) into
    ``out_dir``; an existing key is never overwritten. Raises ModelError."""
    out_dir = Path(out_dir)
    priv_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise ModelError(f"{p} already exists", "pick another --out folder or remove the old key pair first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, pem)
        finally:
            os.close(fd)
        pub_path.write_bytes(pub)
    except OSError as exc:
        raise ModelError(f"cannot write the key pair into {out_dir}: {exc.strerror or exc}",
                         f"make {out_dir} writable") from exc
    kid = key_id(key.public_key())
    log.info("wrote signing key %s (key id %s)", priv_path, kid)
    return KeyPair(priv_path, pub_path, kid)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the signing key {path}: {exc.strerror or exc}", "check --key") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path} is not an unencrypted PEM private key",
                         "pass the .key file written by `edgeinfer model keygen`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelError(f"{path} is not an Ed25519 key", "make one with `edgeinfer model keygen`")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the trusted key {path}: {exc.strerror or exc}", "check --trust") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path} is not a PEM public key",
                         "pass the .pub file written by `edgeinfer model keygen`") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ModelError(f"{path} is not an Ed25519 public key", "make one with `edgeinfer model keygen`")
    return key


def load_trusted_keys(paths: Iterable[Path]) -> list[Ed25519PublicKey]:
    return [load_public_key(Path(p)) for p in paths]


# -- signing ----------------------------------------------------------------------------------------------


def signature_document(manifest_text: str, where: str, key: Ed25519PrivateKey) -> dict[str, str]:
    """The ``signature.json`` content for a manifest's YAML text."""
    data, name, version = _manifest_data(manifest_text, where)
    payload = _payload(data)
    return {
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "package": name,
        "version": version,
        "manifest_sha256": hashlib.sha256(payload[len(_CONTEXT):]).hexdigest(),
        "signature": base64.b64encode(key.sign(payload)).decode("ascii"),
    }


def _dump(doc: dict[str, str]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign_package(path: Path, key: Ed25519PrivateKey) -> Path:
    """Sign a package folder or zip in place (``signature.json`` beside the manifest, replacing any old one).
    The files must match the manifest first. Returns the signature file (or the zip). Raises ModelError."""
    from .package import load_package

    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return _sign_zip(path, key)
    pkg = load_package(path, verify=True)  # never vouch for bytes the manifest does not describe
    manifest_path = pkg.root / MANIFEST_NAME
    doc = signature_document(manifest_path.read_text(encoding="utf-8"), str(manifest_path), key)
    target = pkg.root / SIGNATURE_NAME
    try:
        fd, tmp = tempfile.mkstemp(dir=pkg.root, prefix=f".{SIGNATURE_NAME}-")
        with os.fdopen(fd, "wb") as f:
            f.write(_dump(doc))
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"cannot write {target}: {exc.strerror or exc}", f"make {pkg.root} writable") from exc
    log.info("signed %s %s with key %s", doc["package"], doc["version"], doc["key_id"][:16])
    return target


def _sign_zip(zip_path: Path, key: Ed25519PrivateKey) -> Path:
    from .package import load_package

    load_package(zip_path, verify=True)  # unpacks (bounded) into the cache and checks every sha256
    with zipfile.ZipFile(zip_path) as zf:
        plan = plan_zip(zf, zip_path.name)
        doc = signature_document(plan.manifest_text, f"{zip_path.name}:{plan.prefix}{MANIFEST_NAME}", key)
        sig_name = plan.prefix + SIGNATURE_NAME
        fd, tmp = tempfile.mkstemp(dir=zip_path.parent, prefix=f".{zip_path.name}-")
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as out:
                for info in zf.infolist():
                    if info.filename == sig_name:
                        continue
                    with zf.open(info) as src, out.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                out.writestr(sig_name, _dump(doc))
            os.replace(tmp, zip_path)
        except OSError as exc:
            raise ModelError(f"cannot rewrite {zip_path}: {exc.strerror or exc}",
                             f"free space under {zip_path.parent} or make it writable") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    log.info("signed %s %s with key %s", doc["package"], doc["version"], doc["key_id"][:16])
    return zip_path


# -- verifying --------------------------------------------------------------------------------------------


def verify_signature(pkg_root: Path, trusted_keys: Iterable[Ed25519PublicKey]) -> SignatureCheck:
    """Check ``pkg_root/signature.json`` against the manifest beside it and the trusted keys. Never raises:
    every failure is a SignatureCheck with ``ok=False`` and a one-line reason. The sha256s of the files
    are not checked here (``ModelPackage.verify_hashes`` does that); together they bind every byte."""
    root = Path(pkg_root)
    trusted = {key_id(k): k for k in trusted_keys}
    if not trusted:
        return SignatureCheck(False, "no trusted keys given")
    sig_path = root / SIGNATURE_NAME
    if not sig_path.is_file():
        return SignatureCheck(False, f"package is unsigned (no {SIGNATURE_NAME})")
    try:
        if sig_path.stat().st_size > SIGNATURE_MAX_BYTES:
            return SignatureCheck(False, f"{SIGNATURE_NAME} is over {SIGNATURE_MAX_BYTES} bytes")
        doc = json.loads(sig_path.read_text(encoding="utf-8"))
        manifest_text = (root / MANIFEST_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return SignatureCheck(False, f"cannot read {SIGNATURE_NAME} or the manifest ({exc})")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("algorithm", "key_id", "signature")):
        return SignatureCheck(False, f"{SIGNATURE_NAME} lacks algorithm, key_id or signature")
    if doc["algorithm"] != ALGORITHM:
        return SignatureCheck(False, f"unsupported signature algorithm {doc['algorithm']!r} (want {ALGORITHM})")
    try:
        data, name, version = _manifest_data(manifest_text, str(root / MANIFEST_NAME))
        payload = _payload(data)
    except ModelError as exc:
        return SignatureCheck(False, str(exc))
    kid = doc["key_id"]
    claimed = (doc.get("package"), doc.get("version"))
    if claimed != (name, version):
        return SignatureCheck(False, f"{SIGNATURE_NAME} is for package {claimed[0]} {claimed[1]}, "
                              f"not {name} {version}", kid)
    key = trusted.get(kid)
    if key is None:
        return SignatureCheck(False, f"signed by key {kid[:16]}…, which is not trusted", kid)
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
        key.verify(sig, payload)
    except (binascii.Error, ValueError):
        return SignatureCheck(False, f"{SIGNATURE_NAME} holds a malformed signature", kid)
    except InvalidSignature:
        return SignatureCheck(False, f"signature does not match the manifest of {name} {version} "
                              "(the package was changed after signing)", kid)
    return SignatureCheck(True, f"{name} {version} signed by trusted key {kid[:16]}…", kid)


def check_not_older(new_version: str, running_version: str | None, allow_downgrade: bool = False) -> None:
    """Replay protection: raise ModelError when ``new_version`` is older (semver) than ``running_version``.
    The same version is allowed (a re-deploy); ``running_version`` None means nothing runs yet."""
    from ...greengrass.recipes.semver import Version

    if running_version is None:
        return
    try:
        new, running = Version.parse(new_version), Version.parse(running_version)
    except ValueError as exc:
        raise ModelError(f"cannot compare model versions: {exc}", "use semantic versions (MAJOR.MINOR.PATCH)") from exc
    if new < running and not allow_downgrade:
        raise ModelError(f"package version {new_version} is older than the running {running_version} "
                         "(a replayed package?)", "publish a newer version, or allow downgrades in the local config")
    if new < running:
        log.warning("downgrading the model from %s to %s (allowed by config)", running_version, new_version)
