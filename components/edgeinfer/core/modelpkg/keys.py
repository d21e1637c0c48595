"""Model decryption keys: the 32-byte AES-256-GCM key, its id, the local key file, and the provider port.

The core never fetches a key from a cloud itself. An adapter passes a ``KeySource`` (the Greengrass
component: the secret manager over IPC; the IoT Edge module: the workload API); ``key_provider`` picks
the provider the local settings (``trust.decryption``) name. A provider is called only when an encrypted
model is loaded, each time (no key is kept between loads).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, ModelError
from .cryptconfig import DecryptionConfig

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_FILE_MAX_BYTES = 4096

#: key id (16 hex) -> the 32-byte key. Raises an EdgeInferError (one line) when it cannot get it.
KeyProvider = Callable[[str], bytes]
#: an adapter's provider for these settings, or None when its source is not the one configured
KeySource = Callable[[DecryptionConfig], "KeyProvider | None"]

_SETUP = ("set trust.decryption in the device's local settings: key_file, greengrass_secret (Greengrass) or "
          "iotedge_wrapped_key (IoT Edge)")


def key_id(key: bytes) -> str:
    """The first 16 hex digits of the key's sha256: names a key without revealing it."""
    return hashlib.sha256(key).hexdigest()[:16]


def parse_key(data: bytes, where: str) -> bytes:
    """A 32-byte key from raw bytes, or from 64 hex digits / base64 text (whitespace ignored). Raises ConfigError."""
    if len(data) == KEY_BYTES:
        return bytes(data)
    text = b"".join(data.split())
    candidates: list[bytes] = []
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(binascii.Error):
            candidates.append(binascii.unhexlify(text))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(text, validate=True))
    for key in candidates:
        if len(key) == KEY_BYTES:
            return key
    raise ConfigError(f"{where} does not hold a {KEY_BYTES}-byte AES-256 key ({len(data)} bytes: not raw, hex "
                      "or base64 of 32 bytes)", "write a key with `edgeinfer model encrypt PKG --new-key FILE`")


def read_private_file(path: str | Path, what: str, max_bytes: int = KEY_FILE_MAX_BYTES) -> bytes:
    """The bytes of a secret file that only the service user can read: a regular file (no symlink), owned by
    this process's user, mode 0600 or stricter. Raises ConfigError naming what to fix."""
    p = Path(path).expanduser()
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        hint = "a symlink is not accepted: point at the file itself" if exc.errno == errno.ELOOP else f"check {what}"
        raise ConfigError(f"cannot open {what} {p}: {exc.strerror or exc}", hint) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} {p} is not a regular file", "point it at the key file")
        if st.st_uid != os.geteuid():
            raise ConfigError(f"{what} {p} is owned by uid {st.st_uid}, not by the service user (uid {os.geteuid()})",
                              "chown it to the user edgeinfer runs as")
        if st.st_mode & 0o077:
            raise ConfigError(f"{what} {p} is mode {stat.S_IMODE(st.st_mode):04o}: group or others can read or "
                              "change it", f"chmod 600 {p}")
        if st.st_size > max_bytes:
            raise ConfigError(f"{what} {p} is {st.st_size} bytes, over {max_bytes}", "point it at the key file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(max_bytes + 1)
    finally:
        os.close(fd)


def read_key_file(path: str | Path, what: str = "trust.decryption.key_file") -> bytes:
    return parse_key(read_private_file(path, what), f"{what} {path}")


def write_key_file(path: str | Path) -> bytes:
    """Write a fresh random key (raw 32 bytes) to a new file, mode 0600 whatever the umask; return it.
    An existing file is never overwritten. Raises ModelError."""
    p = Path(path).expanduser()
    key = os.urandom(KEY_BYTES)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError as exc:
        raise ModelError(f"{p} already exists", "pass the existing key with --key, or another --new-key path") from exc
    except OSError as exc:
        raise ModelError(f"cannot create the key file {p}: {exc.strerror or exc}", f"make {p.parent} writable") from exc
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("wrote a new model key %s (key id %s)", p, key_id(key))
    return key


def file_key_provider(path: str) -> KeyProvider:
    """The local key file, read (and its mode checked) at every load."""
    return lambda _kid: read_key_file(path)


def _unavailable(problem: str, fix: str) -> KeyProvider:
    def provider(kid: str) -> bytes:
        raise ModelError(f"the model is encrypted (key id {kid}) but {problem}", fix)

    return provider


def key_provider(settings: DecryptionConfig, source: KeySource | None = None) -> KeyProvider:
    """The provider ``settings`` name: the local key file, else the adapter's ``source``. A provider that cannot
    be had here raises its one-line reason when (and only when) an encrypted model is loaded."""
    if settings.key_file:
        return file_key_provider(settings.key_file)
    provider = source(settings) if source is not None else None
    if provider is not None:
        return provider
    if settings.greengrass_secret:
        return _unavailable("trust.decryption.greengrass_secret works only in the Greengrass component",
                            "use trust.decryption.key_file on this host")
    if settings.iotedge_wrapped_key:
        return _unavailable("trust.decryption.iotedge_wrapped_key works only in the IoT Edge module",
                            "use trust.decryption.key_file on this host")
    return _unavailable("no decryption key is configured", _SETUP)
