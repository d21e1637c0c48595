"""What a device accepts as its model when ``trust.keys`` is set: signed packages, never older than before.

* A package must carry a signature by one of the trusted keys (``verify_signature``); its files were already
  checked against the manifest's sha256s when it was loaded, so together every byte is bound.
* Replay protection: a signed package older (semver) than the running one of the same name, or than the
  newest version of that name ever activated on this device, is refused unless ``trust.allow_downgrade``.
  The newest activated versions are kept in ``<state_dir>/activated-models.json`` (0600), so a restart
  does not forget them.
* A bare model file cannot be signed, so it is refused; the embedded demo model is code, and allowed.

Without trusted keys nothing here refuses anything (and nothing is recorded).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EdgeInferError, ModelError
from ..paths import private_dir
from .manifest import FORMAT_BY_SUFFIX, SEMVER, Manifest
from .package import ModelPackage
from .trustconfig import TrustConfig

if TYPE_CHECKING:  # signing needs cryptography: imported when keys are set, not on every start
    from .signing import SignatureCheck
    from .signkeys import PublicKey

log = logging.getLogger(__name__)

RECORD_NAME = "activated-models.json"
RECORD_MAX_BYTES = 1 << 20
_FIX = ("install a package signed by a key in trust.keys (`edgeinfer model sign`, `edgeinfer aws publish "
        "--sign-key/--kms-key`), or add its signer's public key to trust.keys in the local config")


def trusted_keys(trust: TrustConfig) -> list[PublicKey]:
    from .signkeys import load_public_key

    """The public keys ``trust.keys`` names, read now. A key that cannot be read is a ConfigError: a device
    told to trust keys never falls back to trusting anything."""
    keys: list[PublicKey] = []
    for name in trust.keys:
        try:
            keys.append(load_public_key(Path(name).expanduser()))
        except ModelError as exc:
            raise ConfigError(f"trust.keys: {exc.problem}", "fix the path in trust.keys (a PEM public key file "
                              "readable by the service), or remove the entry") from exc
    return keys


def refuse_bare(path: str, trust: TrustConfig) -> None:
    """With trusted keys, a bare model file (``.onnx``, ``.tflite``...) is refused: it cannot carry a signature."""
    if not trust.keys or path.startswith("zoo:"):
        return
    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in FORMAT_BY_SUFFIX:
        raise ModelError(f"model {p.name} refused: a bare model file cannot be signed, and trust.keys is set",
                         "package it (`edgeinfer model import`), sign the package (`edgeinfer model sign`) and "
                         "point model.path at the package")


def check_package(package: ModelPackage, trust: TrustConfig, running: Manifest | None,
                  state_dir: Path) -> SignatureCheck | None:
    """Raise ModelError unless ``package`` may become the model: signed by a trusted key, and not older than
    ``running`` (same name) or the newest version of its name activated before. None when no keys are set."""
    if not trust.keys:
        return None
    from .signing import verify_signature

    keys = trusted_keys(trust)
    m = package.manifest
    check = verify_signature(package.root, keys)
    if not check.ok:
        raise ModelError(f"model package {m.name} {m.version} refused: signature: {check.detail}", _FIX)
    floors = ((running.version if running is not None and running.name == m.name else None, "the running"),
              (activated_version(state_dir, m.name), "the newest activated on this device,"))
    for floor, what in floors:
        if floor is not None and not trust.allow_downgrade and _newer(floor, m.version):
            raise ModelError(f"model package {m.name} {m.version} refused: {m.version} is older than {what} "
                             f"{floor} (a replayed package?)", "publish a newer version, or set "
                             "trust.allow_downgrade in the local config to go back on purpose")
        if floor is not None and _newer(floor, m.version):
            log.warning("downgrading model %s to %s below %s %s (trust.allow_downgrade)", m.name, m.version,
                        what.rstrip(","), floor)
    log.info("model package %s %s: %s", m.name, m.version, check.detail)
    return check


# -- the record of activated versions ---------------------------------------------------------------------


def record_path(state_dir: Path) -> Path:
    return Path(state_dir) / RECORD_NAME


def read_record(state_dir: Path) -> dict[str, Any]:
    """``{name: {"version", "key_id"}}`` of the newest activated signed packages; {} when none yet. A record
    that is there but unreadable raises ModelError (fail closed: it may be all that stops a replay)."""
    path = record_path(state_dir)
    try:
        if path.stat().st_size > RECORD_MAX_BYTES:
            raise ModelError(f"{path} is over {RECORD_MAX_BYTES} bytes", f"remove {path} (replay protection then "
                             "starts again from the next activated model)")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read the activated model versions {path}: {exc}",
                         f"restore {path} or remove it (replay protection then starts again from the next "
                         "activated model)") from exc
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict) or not all(isinstance(v, dict) and SEMVER.match(str(v.get("version")))
                                               for v in models.values()):
        raise ModelError(f"{path} is not a record of activated model versions",
                         f"remove {path} (replay protection then starts again from the next activated model)")
    return models


def activated_version(state_dir: Path, name: str) -> str | None:
    entry = read_record(state_dir).get(name)
    return entry["version"] if entry else None


def record_activated(package: ModelPackage, trust: TrustConfig, state_dir: Path, key_id: str | None = None) -> bool:
    """Note ``package`` as activated (when trust.keys is set and it is newer than the record). True when the
    record changed. Never raises: the model runs already; a failure to write is logged."""
    if not trust.keys:
        return False
    m = package.manifest
    try:
        models = read_record(state_dir)
        old = models.get(m.name, {}).get("version")
        if old is not None and not _newer(m.version, old):
            return False
        models[m.name] = {"version": m.version, **({"key_id": key_id} if key_id else {})}
        _write_record(state_dir, models)
    except (EdgeInferError, OSError) as exc:
        log.error("could not record model %s %s as activated in %s: %s (replay protection after a restart "
                  "falls back to what was recorded before)", m.name, m.version, record_path(state_dir), exc)
        return False
    log.info("replay protection: %s %s is the newest activated version", m.name, m.version)
    return True


def _newer(version: str, than: str) -> bool:
    from .signing import check_not_older

    try:
        check_not_older(than, version)  # raises when ``than`` is older (or is not a version at all)
    except ModelError:
        return True
    return False


def _write_record(state_dir: Path, models: dict[str, Any]) -> None:
    folder = private_dir(Path(state_dir))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{RECORD_NAME}-")
    try:
        os.fchmod(fd, 0o600)  # the device's alone, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"models": models}, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, record_path(folder))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
