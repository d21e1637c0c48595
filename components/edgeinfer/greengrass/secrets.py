"""The model decryption key from the Greengrass secret manager component, over IPC (``GetSecretValue``).

``trust.decryption.greengrass_secret`` (local settings) names the secret (ARN, or the name the secret
manager maps to one). The nucleus allows the call only when this component's ``accessControl`` grants
``aws.greengrass#GetSecretValue`` on the secret's ARN under ``aws.greengrass.SecretManager`` (render the
recipe with ``--decryption-secret ARN``), and the secret manager holds it only when its ``cloudSecrets``
lists it. The secret's value: binary (the 32 raw bytes) or a string (64 hex digits or base64).

The key is asked for at each model load and kept nowhere (not on disk, not between loads).
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ResourceNotFoundError, UnauthorizedError

from ..core.errors import ModelError
from ..core.modelpkg.cryptconfig import DecryptionConfig
from ..core.modelpkg.keys import KeyProvider, parse_key
from .ipc import error_text

log = logging.getLogger(__name__)

SECRET_MANAGER = "aws.greengrass.SecretManager"
GET_SECRET_VALUE = "aws.greengrass#GetSecretValue"
TIMEOUT_S = 10.0


class SecretKeys:
    """A ``KeySource`` for RunSession: the provider for ``greengrass_secret``, or None when it is not set."""

    def __init__(self, ipc: GreengrassCoreIPCClientV2, timeout_s: float = TIMEOUT_S) -> None:
        self._ipc = ipc
        self._timeout_s = timeout_s

    def __call__(self, settings: DecryptionConfig) -> KeyProvider | None:
        secret = settings.greengrass_secret
        if not secret:
            return None
        return lambda kid: self.fetch(secret)

    def fetch(self, secret_id: str) -> bytes:
        """The 32-byte key held in ``secret_id``. Raises ModelError (one line, what to fix)."""
        try:
            response = self._ipc.get_secret_value_async(secret_id=secret_id).result(self._timeout_s)
        except UnauthorizedError as exc:
            raise ModelError(f"the nucleus refused secret {secret_id} to this component ({error_text(exc)})",
                             f"grant {GET_SECRET_VALUE} on it under {SECRET_MANAGER} in the component's accessControl "
                             "(edgeinfer greengrass render --decryption-secret ARN)") from exc
        except ResourceNotFoundError as exc:
            raise ModelError(f"secret {secret_id} is not on this device ({error_text(exc)})",
                             f"deploy {SECRET_MANAGER} with the secret's ARN in its cloudSecrets") from exc
        except FutureTimeout:
            raise ModelError(f"the nucleus did not answer GetSecretValue for {secret_id} within "
                             f"{self._timeout_s:.0f} s", f"check that {SECRET_MANAGER} is deployed and "
                             "running") from None
        except Exception as exc:  # ServiceError, a lost connection: the SDK's shapes vary
            raise ModelError(f"could not get secret {secret_id}: {error_text(exc)}",
                             f"check {SECRET_MANAGER}'s log (greengrass/v2/logs/{SECRET_MANAGER}.log)") from exc
        value = response.secret_value
        raw = None
        if value is not None:
            raw = value.secret_binary if value.secret_binary is not None else (
                value.secret_string.encode() if value.secret_string is not None else None)
        if not raw:
            raise ModelError(f"secret {secret_id} has no value", "store the key as the secret's value")
        if isinstance(raw, str):  # the SDK gives bytes; a str would be base64 text
            raw = raw.encode()
        key = parse_key(raw, f"secret {secret_id}")
        log.info("model key from secret %s (version %s)", response.secret_id or secret_id, response.version_id)
        return key
