"""Signed model packages: a signature over the canonical manifest, and replay protection.

The signature covers the manifest's *data* (which lists every file's sha256, the name and the version),
serialised canonically: JSON with sorted keys, no whitespace, UTF-8. Reformatting ``manifest.yaml``
keeps a signature valid; changing any value (a file's sha256, the version, a label) breaks it. The
signature lives beside the manifest in ``signature.json`` and is not listed in the manifest's files.

Two algorithms, one check on the device whichever signed:

* ``ed25519``: Ed25519 over ``CONTEXT + canonical manifest`` (``edgeinfer model keygen/sign``);
* ``ecdsa-p256-sha256``: ECDSA P-256 with SHA-256 (DER signature) over the short message
  ``CONTEXT + "sha256:" + hex sha256 of the canonical manifest``. Short, so that AWS KMS signs it as a
  ``RAW`` message (``ECDSA_SHA_256``: KMS hashes it with SHA-256 itself) whatever the manifest's size
  (KMS takes at most 4096 bytes); a local P-256 key signs the same bytes the same way.
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
from typing import Any, Protocol

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ModelError
from .package import parse_manifest
from .signkeys import (  # noqa: F401  (re-exported: the key functions lived here first)
    ALGORITHMS,
    ECDSA_P256,
    ED25519,
    KeyPair,
    PrivateKey,
    PublicKey,
    algorithm_of,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    load_trusted_keys,
)
from .unzip import MANIFEST_NAME, plan_zip

log = logging.getLogger(__name__)

SIGNATURE_NAME = "signature.json"
ALGORITHM = ED25519  # what `edgeinfer model keygen` makes by default
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


def signed_message(algorithm: str, canonical: bytes) -> bytes:
    """The bytes an ``algorithm`` signature is made over, for a canonical manifest."""
    if algorithm == ECDSA_P256:
        return _CONTEXT + b"sha256:" + hashlib.sha256(canonical).hexdigest().encode("ascii")
    return _CONTEXT + canonical


class Signer(Protocol):
    """Makes signatures: a local key (``LocalSigner``) or a remote one (``cloud.aws.kms.KmsSigner``)."""

    @property
    def algorithm(self) -> str: ...
    @property
    def key_id(self) -> str: ...
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class LocalSigner:
    """A private key file's key (Ed25519 or P-256)."""

    key: PrivateKey

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.key, Ed25519PrivateKey):
            return self.key.sign(message)
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))


def as_signer(key: PrivateKey | Signer) -> Signer:
    return LocalSigner(key) if isinstance(key, (Ed25519PrivateKey, ec.EllipticCurvePrivateKey)) else key


# -- signing ----------------------------------------------------------------------------------------------


def signature_document(manifest_text: str, where: str, key: PrivateKey | Signer) -> dict[str, str]:
    """The ``signature.json`` content for a manifest's YAML text."""
    signer = as_signer(key)
    if signer.algorithm not in ALGORITHMS:
        raise ModelError(f"unsupported signature algorithm {signer.algorithm!r}",
                         f"sign with {' or '.join(ALGORITHMS)}")
    data, name, version = _manifest_data(manifest_text, where)
    canonical = canonical_manifest(data)
    return {
        "algorithm": signer.algorithm,
        "key_id": signer.key_id,
        "package": name,
        "version": version,
        "manifest_sha256": hashlib.sha256(canonical).hexdigest(),
        "signature": base64.b64encode(signer.sign(signed_message(signer.algorithm, canonical))).decode("ascii"),
    }


def _dump(doc: dict[str, str]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign_package(path: Path, key: PrivateKey | Signer) -> Path:
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


def _sign_zip(zip_path: Path, key: PrivateKey | Signer) -> Path:
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


def verify_signature(pkg_root: Path, trusted_keys: Iterable[PublicKey]) -> SignatureCheck:
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
    algorithm = doc["algorithm"]
    if algorithm not in ALGORITHMS:
        return SignatureCheck(False, f"unsupported signature algorithm {algorithm!r} (want {' or '.join(ALGORITHMS)})")
    try:
        data, name, version = _manifest_data(manifest_text, str(root / MANIFEST_NAME))
        message = signed_message(algorithm, canonical_manifest(data))
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
    if algorithm_of(key) != algorithm:
        return SignatureCheck(False, f"{SIGNATURE_NAME} says {algorithm}, but trusted key {kid[:16]}… is "
                              f"{algorithm_of(key)}", kid)
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
        if isinstance(key, Ed25519PublicKey):
            key.verify(sig, message)
        else:
            key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
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
