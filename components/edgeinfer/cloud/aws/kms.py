"""Signing model packages with an AWS KMS key (``ECC_NIST_P256``, ``SIGN_VERIFY``): the private key never
leaves KMS. The signature is ``ecdsa-p256-sha256`` (see core/modelpkg/signing.py): KMS ``Sign`` with
``ECDSA_SHA_256`` over a RAW message, which KMS hashes with SHA-256 itself; a device verifies it with the key's
public half (``edgeinfer aws export-key`` writes it as PEM for ``trust.keys``) exactly as a local P-256 key's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...core.errors import ModelError
from ...core.modelpkg.signkeys import ECDSA_P256, PublicKey, key_id, public_key_from_pem, public_pem
from .errors import AwsError, client_error

log = logging.getLogger(__name__)

KMS_SPEC = "ECC_NIST_P256"
KMS_ALGORITHM = "ECDSA_SHA_256"
KMS_MAX_MESSAGE = 4096  # bytes KMS signs as a RAW message


def _call(what: str, key: str, fn: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return dict(fn(**kwargs))
    except ClientError as exc:
        code, msg = client_error(exc)
        raise AwsError(f"KMS {what} with key {key} failed: {code}: {msg}",
                       "check --kms-key (key id, ARN or alias), its region, and kms:GetPublicKey/kms:Sign "
                       "permission") from exc
    except BotoCoreError as exc:
        raise AwsError(f"KMS {what} with key {key} failed: {exc}", "check your AWS credentials and network") from exc


class KmsSigner:
    """A ``Signer`` (core/modelpkg/signing.py) backed by a KMS asymmetric key."""

    algorithm = ECDSA_P256

    def __init__(self, kms: Any, key: str) -> None:
        if kms is None:
            raise AwsError("no KMS client", "build AwsClients with a kms client (AwsClients.from_session does)")
        self._kms, self._key = kms, key
        desc = _call("GetPublicKey", key, kms.get_public_key, KeyId=key)
        spec = desc.get("KeySpec") or desc.get("CustomerMasterKeySpec")
        if spec != KMS_SPEC or desc.get("KeyUsage") != "SIGN_VERIFY" or \
                KMS_ALGORITHM not in (desc.get("SigningAlgorithms") or []):
            raise AwsError(f"KMS key {key} is {spec} for {desc.get('KeyUsage')}, not {KMS_SPEC} for SIGN_VERIFY",
                           "create one: aws kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY")
        try:
            self.public_key: PublicKey = public_key_from_pem(bytes(desc["PublicKey"]), f"KMS key {key}")
        except ModelError as exc:
            raise AwsError(exc.problem, "use an ECC_NIST_P256 SIGN_VERIFY key") from exc
        self.arn = str(desc.get("KeyId") or key)
        self.key_id = key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        if len(message) > KMS_MAX_MESSAGE:
            raise AwsError(f"a {len(message)}-byte message is over KMS's {KMS_MAX_MESSAGE}-byte RAW limit",
                           "sign with the ecdsa-p256-sha256 algorithm (its message is short)")
        out = _call("Sign", self._key, self._kms.sign, KeyId=self._key, Message=message, MessageType="RAW",
                    SigningAlgorithm=KMS_ALGORITHM)
        signature = bytes(out["Signature"])
        self._check(signature, message)
        log.info("signed with KMS key %s (key id %s)", self.arn, self.key_id[:16])
        return signature

    def _check(self, signature: bytes, message: bytes) -> None:
        """What KMS returned verifies as a device will verify it: never publish a signature devices refuse."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        assert isinstance(self.public_key, ec.EllipticCurvePublicKey)
        try:
            self.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise AwsError(f"KMS key {self._key} returned a signature its public key does not verify",
                           "check the key (a rotated or replaced key?) and sign again") from exc


def export_public_key(kms: Any, key: str, out: Path) -> tuple[Path, str]:
    """Write the KMS key's public half as PEM (for ``trust.keys`` / ``model verify --trust``). (path, key id)."""
    signer = KmsSigner(kms, key)
    out = Path(out)
    if out.exists():
        raise AwsError(f"{out} already exists", "pick another --out, or remove the old file first")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(public_pem(signer.public_key))
    except OSError as exc:
        raise AwsError(f"cannot write {out}: {exc.strerror or exc}", f"make {out.parent} writable") from exc
    return out, signer.key_id
