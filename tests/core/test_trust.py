"""A device with trusted keys (``trust.keys``): the attacks on signed packages against a running RunSession.

The tampered package's sha256s are fixed up, so only the signature can catch it; every refusal leaves the
running model in place; the newest activated version survives a restart (``activated-models.json``, 0600).
"""

from __future__ import annotations

import json
import shutil
import stat
import threading
from pathlib import Path

import pytest
import yaml

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ConfigError, ModelError
from edgeinfer.core.modelpkg import load_package, sha256_file
from edgeinfer.core.modelpkg.signing import SIGNATURE_NAME, generate_keypair, load_private_key, sign_package
from edgeinfer.core.modelpkg.trust import RECORD_NAME, activated_version, record_activated
from edgeinfer.core.preflight import check_model
from edgeinfer.core.runner import load_configured
from edgeinfer.core.session import RunSession

from .test_service import Seen
from .variants import blind_model


def package(src: Path, dst: Path, version: str, key: Path | None) -> Path:
    """``src`` copied to ``dst`` as ``version``, signed with ``key`` (None: unsigned)."""
    shutil.copytree(src, dst)
    (dst / SIGNATURE_NAME).unlink(missing_ok=True)
    data = yaml.safe_load((dst / "manifest.yaml").read_text())
    data["version"] = version
    (dst / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    if key is not None:
        sign_package(dst, load_private_key(key))
    return dst


def tamper(pkg: Path) -> Path:
    """One bit of the model flipped, and its sha256 (and size) in the manifest fixed up to match."""
    model = pkg / "model.onnx"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    model.write_bytes(bytes(raw))
    data = yaml.safe_load((pkg / "manifest.yaml").read_text())
    entry = next(f for f in data["files"] if f["path"] == "model.onnx")
    entry["sha256"] = sha256_file(model)
    (pkg / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    load_package(pkg, verify=True)  # the sha256s agree: only the signature can tell
    return pkg


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path / "keys")
    return pair.private, pair.public


def config(pkg: Path, pub: Path, state: Path, clip: Path, **trust: object) -> EdgeInferConfig:
    return EdgeInferConfig(model={"path": str(pkg), "warmup_runs": 1}, source={"uri": str(clip), "loop": True},
                           state_dir=str(state), trust={"keys": [str(pub)], **trust},
                           probation={"window_s": 1, "min_frames": 5, "max_latency_ratio": 50})


def refused(call, *words: str) -> str:
    with pytest.raises(ModelError) as info:
        call()
    text = str(info.value)
    assert len(text.splitlines()) == 1 and all(w in text for w in words), text
    return text


def test_a_running_device_refuses_every_attack_and_takes_a_good_newer_package(
        demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], keys: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    src, clip, state = demo_pkgs[0], demo_media[1], tmp_path / "state"
    other = generate_keypair(tmp_path / "other").private
    v11 = package(src, tmp_path / "v1.1", "1.1.0", priv)
    cfg = config(v11, pub, state, clip)
    seen, rolled = Seen(), threading.Event()
    svc = RunSession(cfg, extra_sinks=[seen])
    svc.start()
    try:
        assert seen.wait_more(4)
        assert activated_version(state, "blazeface-full-range") == "1.1.0"
        record = state / RECORD_NAME
        assert stat.S_IMODE(record.stat().st_mode) == 0o600

        attacks = {
            "tampered": (tamper(package(src, tmp_path / "tampered", "1.2.0", priv)), "changed after signing"),
            "other key": (package(src, tmp_path / "other-key", "1.2.0", other), "which is not trusted"),
            "stripped": (package(src, tmp_path / "stripped", "1.2.0", None), "package is unsigned"),
            "replayed": (package(src, tmp_path / "v1.0", "1.0.0", priv), "1.0.0 is older than the running 1.1.0"),
        }
        for what, (pkg, reason) in attacks.items():
            refused(lambda pkg=pkg: svc.reload_model(str(pkg)), "model not changed", "refused", reason)
            doc = {**cfg.model_dump(mode="json"), "model": {"path": str(pkg), "warmup_runs": 1}}
            refused(lambda doc=doc: svc.replace_config(doc), "refused", reason)
            assert svc.status()["model"]["version"] == "1.1.0", what  # the running model stays
            assert svc.config.model.path == str(v11)
        bare = tmp_path / "bare.onnx"
        shutil.copyfile(src / "model.onnx", bare)
        refused(lambda: svc.reload_model(str(bare)), "a bare model file cannot be signed")
        assert seen.wait_more(4)  # still inferring

        # a new model, signed, that finds nothing: on probation, rolled back; the record never names it, so
        # the version before it is no replay afterwards
        blind = package(blind_model(src, tmp_path / "blind-src"), tmp_path / "v1.5", "1.5.0", priv)
        svc.add_probation_listener(lambda outcome, _: outcome == "rolled_back" and rolled.set())
        assert seen.wait_more(20)
        assert svc.reload_model(str(blind))["version"] == "1.5.0"
        assert activated_version(state, "blazeface-full-range") == "1.1.0", "not before its probation is over"
        assert rolled.wait(60), svc.status()
        assert svc.status()["model"]["version"] == "1.1.0"
        assert activated_version(state, "blazeface-full-range") == "1.1.0"

        v2 = package(src, tmp_path / "v2", "2.0.0", priv)  # the same model bytes: nothing to judge
        assert svc.reload_model(str(v2))["version"] == "2.0.0"  # hot-swapped in
        assert seen.wait_more(4)
        assert svc.status()["model"]["version"] == "2.0.0" and svc.status()["running"]
        assert activated_version(state, "blazeface-full-range") == "2.0.0"
        doc = {**cfg.model_dump(mode="json"), "model": {"path": str(v11), "warmup_runs": 1}}
        refused(lambda: svc.replace_config(doc), "1.1.0 is older than the running 2.0.0")
    finally:
        svc.stop(0)

    # restarted with the same state dir and an older package: still refused, nothing starts
    again = RunSession(config(v11, pub, state, clip))
    refused(again.start, "1.1.0 is older than the newest activated on this device, 2.0.0")
    assert not again.running and again.status()["model"] is None
    # unless the local operator allows downgrades
    down = RunSession(config(v11, pub, state, clip, allow_downgrade=True))
    down.start()
    try:
        assert down.status()["model"]["version"] == "1.1.0"
    finally:
        down.stop(0)
    assert activated_version(state, "blazeface-full-range") == "2.0.0"  # a downgrade never lowers the floor


def test_trust_keys_that_cannot_be_read_fail_closed(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "nope.pub"
    cfg = config(demo_pkgs[0], missing, tmp_path / "state", demo_media[1])
    with pytest.raises(ConfigError, match=r"trust\.keys: cannot read the trusted key .*nope\.pub"):
        load_configured(cfg)
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    with pytest.raises(ConfigError, match=r"trust\.keys: .*junk\.pub is not a PEM public key"):
        load_configured(config(demo_pkgs[0], junk, tmp_path / "state", demo_media[1]))


def test_the_demo_model_is_code_and_needs_no_signature(demo_media: tuple[Path, Path], keys: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    cfg = EdgeInferConfig(state_dir=str(tmp_path / "state"), trust={"keys": [str(keys[1])]},
                          model={"warmup_runs": 1})
    model, _ = load_configured(cfg)
    model.close()
    assert model.package.manifest.name == "blazeface-full-range"


def test_deployment_validation_refuses_what_the_device_would(demo_pkgs: tuple[Path, Path],
                                                              demo_media: tuple[Path, Path], keys: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """``preflight`` (Greengrass validates a deployment with it) runs the same check: the deployment fails."""
    priv, pub = keys
    state, clip = tmp_path / "state", demo_media[1]
    unsigned = package(demo_pkgs[0], tmp_path / "unsigned", "3.0.0", None)
    with pytest.raises(ModelError, match=r"would not activate: model package blazeface-full-range 3\.0\.0 "
                                         r"refused: signature: package is unsigned"):
        check_model(config(unsigned, pub, state, clip))
    v3 = package(demo_pkgs[0], tmp_path / "v3", "3.0.0", priv)
    check_model(config(v3, pub, state, clip))  # fine, and validation records nothing
    assert not (state / RECORD_NAME).exists()
    assert record_activated(load_package(v3), config(v3, pub, state, clip).trust, state)
    v2 = package(demo_pkgs[0], tmp_path / "v2", "2.0.0", priv)
    with pytest.raises(ModelError, match=r"2\.0\.0 is older than the newest activated on this device, 3\.0\.0"):
        check_model(config(v2, pub, state, clip))


def test_the_record_is_kept_per_name_and_fails_closed(demo_pkgs: tuple[Path, Path], keys: tuple[Path, Path],
                                                      demo_media: tuple[Path, Path], tmp_path: Path) -> None:
    priv, pub = keys
    state = tmp_path / "state"
    trust = config(demo_pkgs[0], pub, state, demo_media[1]).trust
    v5 = load_package(package(demo_pkgs[0], tmp_path / "v5", "5.0.0", priv))
    assert record_activated(v5, trust, state)
    assert not record_activated(load_package(package(demo_pkgs[0], tmp_path / "v4", "4.0.0", priv)), trust, state)
    other = load_package(package(demo_pkgs[1], tmp_path / "tfl", "1.0.0", priv))  # another name: its own floor
    assert record_activated(other, trust, state)
    doc = json.loads((state / RECORD_NAME).read_text())
    assert {n: e["version"] for n, e in doc["models"].items()} == {
        "blazeface-full-range": "5.0.0", "blazeface-full-range-tflite": "1.0.0"}
    assert not record_activated(v5, trust.model_copy(update={"keys": []}), state)  # no keys: nothing recorded
    (state / RECORD_NAME).write_text("{torn")
    with pytest.raises(ModelError, match="cannot read the activated model versions"):
        check_model(config(v5.root, pub, state, demo_media[1]))
