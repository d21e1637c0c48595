"""Encrypted model files: AES-256-GCM, decrypted in memory only.

The model file of an encrypted package is ``nonce (12 random bytes) || ciphertext || tag (16 bytes)``.
The associated data binds the package name, version and the model file's name, so a ciphertext moved into
another package (or renamed, or relabelled as another version) fails authentication. The manifest says
``encryption: {algorithm: aes-256-gcm, key_id}`` and lists the ciphertext's sha256, so ``model verify``
checks integrity without the key.

Order with signing: encrypt first, then sign (the signature covers the manifest, which lists the
ciphertext's sha256 and the encryption block). Encrypting drops an old ``signature.json``: sign again.

The clear bytes exist only in this process's memory (``decrypt_model``): the package folder, the unpack
cache and any temporary file hold only the ciphertext.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ModelError
from .encryption import ALGORITHM, ModelEncryption
from .keys import KEY_BYTES, KeyProvider, key_id
from .manifest import Manifest
from .package import ModelPackage, load_package, parse_manifest, write_manifest
from .unzip import MANIFEST_NAME, MAX_UNPACKED_BYTES, plan_zip

log = logging.getLogger(__name__)

NONCE_BYTES = 12
TAG_BYTES = 16
SIGNATURE_NAME = "signature.json"  # signing.py's; a signature over the clear manifest is void once encrypted
_AAD_CONTEXT = b"edgeinfer-model-file-v1\n"


@dataclass(frozen=True, slots=True)
class Encrypted:
    """What ``encrypt_package`` wrote."""

    path: Path
    key_id: str
    dropped_signature: bool


def associated_data(name: str, version: str, model_file: str) -> bytes:
    return _AAD_CONTEXT + json.dumps([name, version, model_file], separators=(",", ":")).encode("utf-8")


def manifest_aad(m: Manifest) -> bytes:
    return associated_data(m.name, m.version, m.model_file)


def encrypt_bytes(clear: bytes, key: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ModelError(f"an AES-256 key has {KEY_BYTES} bytes, this one {len(key)}", "use a 32-byte key")
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only for encrypted packages, not every start

    nonce = os.urandom(NONCE_BYTES)  # fresh per encryption: a key is never used twice with one nonce
    return nonce + AESGCM(key).encrypt(nonce, clear, aad)


def decrypt_bytes(blob: bytes, key: bytes, aad: bytes, what: str) -> bytes:
    """The clear bytes, or ModelError when the key, the associated data or a byte of ``blob`` is wrong."""
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise ModelError(f"{what} is {len(blob)} bytes, too short to be AES-256-GCM ciphertext",
                         "re-download the package")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise ModelError(f"{what} does not decrypt with the configured key (wrong key, a changed file, or a "
                         "ciphertext from another package)", "configure the key the package was encrypted "
                         "with, or re-download the package") from None


def decrypt_model(package: ModelPackage, keys: KeyProvider | None) -> bytes | None:
    """The clear model bytes of an encrypted package (in memory), or None for a clear package."""
    m = package.manifest
    enc = m.encryption
    if enc is None:
        return None
    what = f"model {m.name} {m.version}"
    if keys is None:
        raise ModelError(f"{what} is encrypted (key id {enc.key_id}) and no key provider was given",
                         "load it through `edgeinfer run` or an adapter with trust.decryption set")
    key = keys(enc.key_id)
    if key_id(key) != enc.key_id:
        raise ModelError(f"{what} is encrypted with key {enc.key_id}, the configured key is {key_id(key)}",
                         "configure the key the package was encrypted with (trust.decryption)")
    try:
        blob = package.model_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {package.model_path}: {exc.strerror or exc}", "re-download the package") from exc
    return decrypt_bytes(blob, key, manifest_aad(m), f"{what} ({m.model_file})")


# -- encrypting a package ---------------------------------------------------------------------------------


def _encrypted_manifest(m: Manifest, key: bytes, clear: bytes) -> tuple[Manifest, bytes]:
    if m.encryption is not None:
        raise ModelError(f"package {m.name} {m.version} is already encrypted (key id {m.encryption.key_id})",
                         "encrypt the clear package instead")
    blob = encrypt_bytes(clear, key, manifest_aad(m))
    files = [f.model_copy(update={"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)})
             if f.path == m.model_file else f for f in m.files]
    new = m.model_copy(update={"files": files, "encryption": ModelEncryption(algorithm=ALGORITHM, key_id=key_id(key))})
    return Manifest.model_validate(new.model_dump(mode="json", exclude_none=True)), blob


def encrypt_package(path: Path, key: bytes, out: Path | None = None) -> Encrypted:
    """Encrypt the model file of a package folder or zip (in place, or into ``out``). Every file must match the
    manifest first; an old signature is dropped (sign again afterwards). Raises ModelError."""
    path = Path(path)
    target = Path(out) if out is not None else path
    if out is not None and target.exists() and target.resolve() != path.resolve():
        raise ModelError(f"{target} already exists", "pick another --out, or remove it first")
    if path.is_file() and zipfile.is_zipfile(path):
        return _encrypt_zip(path, key, target)
    return _encrypt_folder(path, key, target)


def _encrypt_folder(path: Path, key: bytes, target: Path) -> Encrypted:
    pkg = load_package(path, verify=True)  # never encrypt bytes the manifest does not describe
    manifest, blob = _encrypted_manifest(pkg.manifest, key, pkg.model_path.read_bytes())
    dropped = (pkg.root / SIGNATURE_NAME).is_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        for src in sorted(pkg.root.rglob("*")):
            rel = src.relative_to(pkg.root)
            if rel.as_posix() in (MANIFEST_NAME, SIGNATURE_NAME, manifest.model_file) or not src.is_file():
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / rel)
        model = tmp / manifest.model_file
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(blob)
        write_manifest(manifest, tmp)
        if target.exists():  # in place: the clear folder goes, the encrypted one takes its name
            old = target.with_name(f".{target.name}-clear-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _done(target, manifest, dropped)


def _encrypt_zip(path: Path, key: bytes, target: Path) -> Encrypted:
    """Rewrite the zip member by member; the clear model is read into memory, never unpacked to disk."""
    with zipfile.ZipFile(path) as zf:
        plan = plan_zip(zf, path.name)
        m = parse_manifest(plan.manifest_text, f"{path.name}:{plan.prefix}{MANIFEST_NAME}")
        for entry in m.files:
            info = plan.member(entry.path)
            if info is None or info.is_dir():
                raise ModelError(f"{path.name} lacks {entry.path}, which its manifest lists", "rebuild the package")
            h = hashlib.sha256()
            with zf.open(info) as src:
                while block := src.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != entry.sha256:
                raise ModelError(f"sha256 mismatch for {entry.path} in {path.name}", "rebuild the package")
        model_info = plan.member(m.model_file)
        assert model_info is not None
        if model_info.file_size > MAX_UNPACKED_BYTES:
            raise ModelError(f"{m.model_file} is over {MAX_UNPACKED_BYTES} bytes", "encrypt a smaller model")
        manifest, blob = _encrypted_manifest(m, key, zf.read(model_info))
        replaced = {plan.prefix + n for n in (MANIFEST_NAME, SIGNATURE_NAME, m.model_file)}
        dropped = any(i.filename == plan.prefix + SIGNATURE_NAME for i in zf.infolist())
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as out:
                for info in zf.infolist():
                    if info.filename in replaced:
                        continue
                    with zf.open(info) as src, out.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                out.writestr(plan.prefix + m.model_file, blob, compress_type=zipfile.ZIP_STORED)  # it won't deflate
                data = manifest.model_dump(mode="json", exclude_none=True)
                out.writestr(plan.prefix + MANIFEST_NAME, yaml.safe_dump(data, sort_keys=False))
            os.replace(tmp, target)
        except OSError as exc:
            raise ModelError(f"cannot write {target}: {exc.strerror or exc}",
                             f"free space under {target.parent} or make it writable") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return _done(target, manifest, dropped)


def _done(target: Path, manifest: Manifest, dropped: bool) -> Encrypted:
    assert manifest.encryption is not None
    kid = manifest.encryption.key_id
    log.info("encrypted %s of %s %s with key %s", manifest.model_file, manifest.name, manifest.version, kid)
    if dropped:
        log.warning("the old signature of %s was dropped: sign the encrypted package again", target)
    return Encrypted(target, kid, dropped)
