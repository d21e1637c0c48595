"""The model decryption key kept wrapped by the IoT Edge security daemon (the workload API's encrypt/decrypt).

``trust.decryption.iotedge_wrapped_key`` (local settings) names a file that holds the 32-byte model key
encrypted by aziot-edged with its master encryption key (``iotedge_master_encryption_id`` in aziot-keyd:
the HSM/TPM when the device is set up with one, a key file otherwise), bound to this module's id and
generation id as associated data. The module asks the daemon to decrypt it at each model load and keeps
the clear key nowhere.

Sealing: the operator copies the clear key to ``iotedge_seal_key_file`` (0600); at the next load the module
has the daemon encrypt it, writes the wrapped file (0600) and deletes the clear one. A module deleted and
created again gets a new generation id, and the daemon cannot decrypt what the old one wrapped: the error
says so and how to seal the key again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from ..core.errors import ModelError
from ..core.modelpkg.cryptconfig import DecryptionConfig
from ..core.modelpkg.keys import KeyProvider, key_id, parse_key, read_private_file

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
IV_BYTES = 16
_FORMAT = "edgeinfer-wrapped-key-v1"


class WorkloadKeys:
    """A ``KeySource`` for RunSession: unwraps ``iotedge_wrapped_key`` through the workload API."""

    def __init__(self, workload_uri: str, module_id: str, generation_id: str, api_version: str,
                 timeout_s: float = TIMEOUT_S, session: Any | None = None) -> None:
        if not workload_uri.startswith("unix://"):
            raise ModelError(f"IOTEDGE_WORKLOADURI {workload_uri!r} is not a unix socket",
                             "run the module under aziot-edged (it sets unix:///var/run/iotedge/workload.sock)")
        self._base = "http+unix://" + urllib.parse.quote(workload_uri.removeprefix("unix://"), safe="")
        self._module, self._generation, self._api = module_id, generation_id, api_version
        self._timeout_s = timeout_s
        self._session = session

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> WorkloadKeys | None:
        """From the variables edgeAgent starts the module with; None outside IoT Edge."""
        e = os.environ if env is None else env
        names = ("IOTEDGE_WORKLOADURI", "IOTEDGE_MODULEID", "IOTEDGE_MODULEGENERATIONID", "IOTEDGE_APIVERSION")
        if not all(e.get(n) for n in names):
            return None
        return cls(e[names[0]], e[names[1]], e[names[2]], e[names[3]])

    def __call__(self, settings: DecryptionConfig) -> KeyProvider | None:
        wrapped = settings.iotedge_wrapped_key
        if not wrapped:
            return None
        seal = settings.iotedge_seal_key_file
        if seal and Path(seal).expanduser().exists():
            self.seal(Path(seal).expanduser(), Path(wrapped).expanduser())
        return lambda kid: self.unwrap(Path(wrapped).expanduser())

    # -- sealing and unwrapping ----------------------------------------------------------------------
    def seal(self, clear_file: Path, wrapped_file: Path) -> str:
        """Wrap the key in ``clear_file`` into ``wrapped_file`` (0600), then delete ``clear_file``. Returns the
        key id. An existing wrapped file is replaced only after the new one is written (a key rotation)."""
        key = parse_key(read_private_file(clear_file, "trust.decryption.iotedge_seal_key_file"),
                        f"trust.decryption.iotedge_seal_key_file {clear_file}")
        iv = os.urandom(IV_BYTES)
        answer = self._post("encrypt", {"plaintext": _b64(key), "initializationVector": _b64(iv)})
        ciphertext = answer.get("ciphertext")
        if not isinstance(ciphertext, str):
            raise ModelError("the workload API's encrypt answer has no ciphertext", "check aziot-edged's log")
        doc = {"format": _FORMAT, "key_id": key_id(key), "module": self._module, "generation": self._generation,
               "iv": _b64(iv), "ciphertext": ciphertext}
        # the clear copy goes only once the wrapped one is known to come back (and the old one stays till then)
        self._unwrap_doc(doc, wrapped_file)
        _write_private(wrapped_file, json.dumps(doc, indent=2) + "\n")
        clear_file.unlink()
        log.info("model key %s sealed by the IoT Edge security daemon into %s; %s deleted", doc["key_id"],
                 wrapped_file, clear_file)
        return str(doc["key_id"])

    def unwrap(self, wrapped_file: Path) -> bytes:
        """The clear 32-byte key from ``wrapped_file``. Raises ModelError (one line, what to fix)."""
        raw = read_private_file(wrapped_file, "trust.decryption.iotedge_wrapped_key", max_bytes=16 * 1024)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{wrapped_file} is not a wrapped model key", _RESEAL) from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ModelError(f"{wrapped_file} is not a wrapped model key ({_FORMAT})", _RESEAL)
        return self._unwrap_doc(doc, wrapped_file)

    def _unwrap_doc(self, doc: dict[str, Any], where: Path) -> bytes:
        if doc.get("module") != self._module or doc.get("generation") != self._generation:
            raise ModelError(f"{where} was sealed by module {doc.get('module')} generation {doc.get('generation')}, "
                             f"this is {self._module} generation {self._generation}: the daemon binds a wrapped key "
                             "to the module instance that sealed it", _RESEAL)
        answer = self._post("decrypt", {"ciphertext": str(doc.get("ciphertext")),
                                        "initializationVector": str(doc.get("iv"))})
        try:
            key = base64.b64decode(str(answer.get("plaintext")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ModelError("the workload API's decrypt answer is not base64", "check aziot-edged's log") from exc
        key = parse_key(key, f"the key unwrapped from {where}")
        if key_id(key) != doc.get("key_id"):
            raise ModelError(f"the key unwrapped from {where} is not key {doc.get('key_id')}", _RESEAL)
        return key

    def _post(self, operation: str, body: dict[str, str]) -> dict[str, Any]:
        import requests
        import requests_unixsocket

        url = f"{self._base}/modules/{urllib.parse.quote(self._module, safe='')}/genid/" \
              f"{urllib.parse.quote(self._generation, safe='')}/{operation}"
        try:
            if self._session is not None:
                r = self._session.post(url, params={"api-version": self._api}, json=body, timeout=self._timeout_s)
            else:
                with requests_unixsocket.Session() as session:
                    r = session.post(url, params={"api-version": self._api}, json=body, timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise ModelError(f"the IoT Edge workload API did not answer {operation} ({type(exc).__name__})",
                             "check that aziot-edged runs (iotedge system status)") from exc
        if r.status_code != 200:
            message = _message(r)
            raise ModelError(f"the IoT Edge workload API refused {operation}: HTTP {r.status_code} {message}",
                             "check aziot-edged's log (iotedge system logs); " + _RESEAL)
        try:
            answer = r.json()
        except ValueError as exc:
            raise ModelError(f"the IoT Edge workload API's {operation} answer is not JSON",
                             "check aziot-edged's log") from exc
        return answer if isinstance(answer, dict) else {}


_RESEAL = ("seal the key again: copy the clear key to trust.decryption.iotedge_seal_key_file (chmod 600) and "
           "restart the module")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _message(r: Any) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        doc = r.json()
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            return " ".join(doc["message"].split())[:200]
    return ""


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
