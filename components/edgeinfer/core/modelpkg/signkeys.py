"""Keys that sign model packages: Ed25519 (``edgeinfer model keygen``) and ECDSA P-256 (AWS KMS, or keygen).

A key's id is the sha256 (hex) of its public key: the raw 32 bytes for Ed25519, the DER
SubjectPublicKeyInfo for P-256 (what ``aws kms get-public-key`` returns, so
``base64 -d | sha256sum`` of its ``PublicKey`` gives the id).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ModelError

log = logging.getLogger(__name__)

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
ALGORITHMS = (ED25519, ECDSA_P256)
KeyKind = Literal["ed25519", "ecdsa-p256"]  # what `model keygen --algorithm` takes
PrivateKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def algorithm_of(key: PublicKey) -> str:
    """The signature algorithm a public key verifies: ``ed25519`` or ``ecdsa-p256-sha256``."""
    return ED25519 if isinstance(key, Ed25519PublicKey) else ECDSA_P256


def key_id(public_key: PublicKey) -> str:
    """sha256 (hex) of the raw Ed25519 key, or of the P-256 key's DER SubjectPublicKeyInfo."""
    if isinstance(public_key, Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(raw).hexdigest()


def _supported(key: object) -> bool:
    if isinstance(key, (Ed25519PrivateKey, Ed25519PublicKey)):
        return True
    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and \
        isinstance(key.curve, ec.SECP256R1)


def generate_keypair(out_dir: Path, name: str = "model-signing", algorithm: KeyKind = "ed25519") -> KeyPair:
    """Write ``<name>.key`` (PKCS#8 PEM, mode 0600) and ``<name>.pub`` (SubjectPublicKeyInfo PEM) into
    ``out_dir``; an existing key is never overwritten. Raises ModelError."""
    out_dir = Path(out_dir)
    priv_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for p in (priv_path, pub_path):
        if p.exists():
            raise ModelError(f"{p} already exists", "pick another --out folder or remove the old key pair first")
    if algorithm == "ed25519":
        key: PrivateKey = Ed25519PrivateKey.generate()
    elif algorithm == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ModelError(f"unknown key algorithm {algorithm!r}", "use ed25519 or ecdsa-p256")
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
    log.info("wrote %s signing key %s (key id %s)", algorithm, priv_path, kid)
    return KeyPair(priv_path, pub_path, kid)


def load_private_key(path: Path) -> PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the signing key {path}: {exc.strerror or exc}", "check --key") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path} is not an unencrypted PEM private key",
                         "pass the .key file written by `edgeinfer model keygen`") from exc
    if not _supported(key):
        raise ModelError(f"{path} is not an Ed25519 or ECDSA P-256 key", "make one with `edgeinfer model keygen`")
    return key  # type: ignore[return-value]


def public_key_from_pem(data: bytes, where: str) -> PublicKey:
    """An Ed25519 or P-256 public key from PEM (or DER) bytes. Raises ModelError naming ``where``."""
    try:
        key = (serialization.load_pem_public_key(data) if data.lstrip().startswith(b"-----")
               else serialization.load_der_public_key(data))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{where} is not a PEM public key",
                         "pass a .pub file from `edgeinfer model keygen` or `edgeinfer aws export-key`") from exc
    if not _supported(key):
        raise ModelError(f"{where} is not an Ed25519 or ECDSA P-256 public key",
                         "trust the .pub file of an Ed25519 or P-256 signing key")
    return key  # type: ignore[return-value]


def load_public_key(path: Path) -> PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the trusted key {path}: {exc.strerror or exc}", "check --trust") from exc
    return public_key_from_pem(data, str(path))


def load_trusted_keys(paths: Iterable[Path]) -> list[PublicKey]:
    return [load_public_key(Path(p)) for p in paths]


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
