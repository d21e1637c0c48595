"""An attacker who controls the cloud side, against the real processes: the IoT Edge module (real azure-iot-device
client, TLS Mosquitto, the test hub) and the Greengrass component (real IPC client, the fake nucleus). The device
runs with strict local settings. Each twin patch or deployment that tries to run a command, write outside the
device's folders, open a file transport, reach the metadata address or an internal host, or leak a SAS signature
is refused whole with one line naming the key; nothing is written or connected to; the running configuration
stays; and no secret appears in the log, the reported properties or the state dir. A hook the local operator
defined, fired by a remote rule, gets none of the service's credentials."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc import model

from tests.azure.conftest import (  # the IoT Edge harness (not its permissive local settings)
    StartModule,
    edge_module,
    files,
    module_site,
    netns_prefix,
    pki,
    short_dir,
)
from tests.azure.test_module_runtime import desired_for
from tests.conftest import LocalSettings
from tests.greengrass.conftest import core, inference_recipe, model_artifact, model_recipe
from tests.greengrass.harness import Core
from tests.greengrass.test_component_process import start_component

__all__ = ["core", "edge_module", "files", "inference_recipe", "model_artifact", "model_recipe", "module_site",
           "netns_prefix", "pki", "short_dir"]

SECRET_SIG = "SECRETSIG0123456789abcdef"
FACE_RULE = {"name": "face", "when": {"label": "face", "min_score": 0.5}, "cooldown_s": 0}


class Listener:
    """An internal service on 127.0.0.1 that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def internal() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def strict_settings(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path], env_out: Path) -> dict[str, Any]:
    """What a careful operator writes: the model and frame folders, one webhook and one model host, one hook."""
    return {"hooks": {"env_dump": {"argv": ["/bin/sh", "-c", f"env > {env_out}"], "timeout_s": 5}},
            "remote": {"model_dirs": [str(demo_pkgs[0].parent)], "source_dirs": [str(demo_media[0].parent)],
                       "webhook_hosts": ["hooks.example.com"], "model_hosts": ["models.example.com"]}}


def attacks(tmp: Path, internal: Listener) -> list[tuple[str, dict[str, Any], str]]:
    """(what, remote document fragment, what the one-line refusal must say)."""
    pwned = tmp / "pwned"
    return [
        ("argv in a command action", {"rules": [{**FACE_RULE, "actions": [
            {"type": "command", "argv": ["sh", "-c", f"id > {pwned}"]}]}]}, "hook"),
        ("an undefined hook", {"rules": [{**FACE_RULE, "actions": [{"type": "command", "hook": "rm_rf"}]}]},
         "rm_rf"),
        ("output.dir elsewhere", {"output": {"dir": str(tmp / "loot")}}, "output.dir"),
        ("state_dir elsewhere", {"state_dir": str(tmp / "state-elsewhere")}, "state_dir"),
        ("a webhook to the metadata address", {"rules": [{**FACE_RULE, "actions": [
            {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}]}]}, "169.254.169.254"),
        ("a webhook to an internal host", {"rules": [{**FACE_RULE, "actions": [
            {"type": "webhook", "url": f"http://127.0.0.1:{internal.port}/admin"}]}]}, "remote.webhook_hosts"),
        ("a camera on an internal host", {"source": {"uri": f"rtsp://127.0.0.1:{internal.port}/x"}},
         "remote.source_hosts"),
        ("frames from /etc", {"source": {"uri": "/etc"}}, "remote.source_dirs"),
        ("local hooks redefined", {"hooks": {"env_dump": {"argv": ["/bin/sh", "-c", f"id > {pwned}"]}}}, "hooks"),
        ("the allow-lists widened", {"remote": {"webhook_hosts": ["*"]}}, "remote"),
        ("trust switched off", {"trust": {"allow_downgrade": True}}, "trust"),
    ]


def undo(patch: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that takes ``patch`` back off ``original``."""
    out: dict[str, Any] = {}
    for k, v in patch.items():
        was = original.get(k)
        out[k] = undo(v, was) if isinstance(v, dict) and isinstance(was, dict) else was
    return out


def nothing_written(tmp: Path) -> None:
    assert not (tmp / "pwned").exists() and not (tmp / "loot").exists() and not (tmp / "state-elsewhere").exists()


# -- IoT Edge ------------------------------------------------------------------------------------------------

def test_twin_patches_cannot_take_the_module(edge_module: StartModule, demo_pkgs: tuple[Path, Path],
                                             demo_media: tuple[Path, Path], local_settings: LocalSettings,
                                             internal: Listener, tmp_path: Path) -> None:
    env_out = tmp_path / "hook-env.txt"
    local_settings(strict_settings(demo_pkgs, demo_media, env_out))
    original = desired_for(demo_pkgs[0], demo_media[0])
    m = edge_module(original)
    assert m.wait_ready()["config"]["applied_version"] == 1
    applied = 1

    def settled(v: int, what: str) -> dict[str, Any]:
        return m.hub.wait_reported(lambda r: r.get("config", {}).get("desired_version") == v
                                   and r["config"].get("status") in ("applied", "rejected"), 90, what)["config"]

    def take_back(patch: dict[str, Any]) -> int:
        """The twin's writer restores what it changed: the next attack stands alone."""
        v = m.hub.patch_desired(undo(patch, original))
        assert settled(v, "restored")["status"] == "applied"
        return v

    for what, patch, says in attacks(tmp_path, internal):
        r = settled(m.hub.patch_desired(patch), what)
        assert r["status"] == "rejected" and r["applied_version"] == applied, (what, r)
        assert says in r["error"] and "\n" not in r["error"], (what, r["error"])
        applied = take_back(patch)
    # model deliveries: to the metadata address and to the internal host (not on remote.model_hosts)
    for uri in ("http://169.254.169.254/latest/model.zip", f"https://127.0.0.1:{internal.port}/m.zip"):
        patch = {"model": {"name": "faces", "version": "9", "uri": uri, "sha256": "0" * 64, "path": None}}
        r = settled(m.hub.patch_desired(patch), uri)
        assert r["status"] == "rejected" and r["applied_version"] == applied and "model.uri" in r["error"], r
        applied = take_back(patch)
    # a SAS URL on an allowed host that does not answer: the delivery fails and the signature goes nowhere
    v = m.hub.patch_desired({"model": {"name": "faces", "version": "9", "sha256": "0" * 64, "path": None,
                                       "uri": f"https://models.example.com/m.zip?sv=2024&sig={SECRET_SIG}"}})
    r = settled(v, "the SAS delivery ends")
    assert r["status"] == "rejected" and r["applied_version"] == applied, r
    assert "models.example.com" in r["error"] and "failed" in r["error"], r
    status, body = m.hub.invoke("reload", {"path": "/etc"})
    assert status == 400 and "outside remote.model_dirs" in body["error"]
    status, body = m.hub.invoke("getStats")
    assert status == 200 and body["model"]["name"] == "blazeface-full-range", "the model still runs"
    assert body["running"] is True
    assert internal.accepted == 0, "nothing connected to the internal host"
    nothing_written(tmp_path)
    assert m.stop() == 0
    assert SECRET_SIG not in m.log_text() and SECRET_SIG not in json.dumps(m.hub.reported)
    leaked = [p for p in m.state_dir.rglob("*") if p.is_file() and SECRET_SIG.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_a_local_hook_fired_by_a_remote_rule_gets_no_module_credentials(
        edge_module: StartModule, demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
        local_settings: LocalSettings, tmp_path: Path) -> None:
    env_out = tmp_path / "hook-env.txt"
    local_settings(strict_settings(demo_pkgs, demo_media, env_out))
    rules = [{**FACE_RULE, "actions": [{"type": "command", "hook": "env_dump"}]}]
    m = edge_module(desired_for(demo_pkgs[0], demo_media[0], rules=rules))
    assert m.wait_ready()["config"]["status"] == "applied"
    m.hub.wait_for(lambda h: env_out.is_file() and env_out.stat().st_size > 0, 60, "the hook ran")
    names = {line.split("=", 1)[0] for line in env_out.read_text().splitlines() if "=" in line}
    assert names and not {n for n in names if n.startswith(("IOTEDGE_", "AWS_", "AZURE_"))}
    assert m.stop() == 0


# -- Greengrass ----------------------------------------------------------------------------------------------

def test_deployments_cannot_take_the_component(core: Core, inference_recipe: dict[str, Any],
                                               model_recipe: dict[str, Any], model_artifact: tuple[Path, Any],
                                               demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                               local_settings: LocalSettings, internal: Listener,
                                               tmp_path: Path) -> None:
    env_out = tmp_path / "hook-env.txt"
    local_settings(strict_settings(demo_pkgs, demo_media, env_out))
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    before = json.loads(json.dumps(n.components[name].config))
    greengrass_only = [("a file: transport", {"telemetry": {**before["telemetry"],
                                                            "transport": f"file:{tmp_path / 'pwned'}"}}, "file:"),
                       ("model.path outside the model folders", {"model": {**before["model"], "path": "/etc"}},
                        "remote.model_dirs")]
    for what, fragment, says in [*attacks(tmp_path, internal), *greengrass_only]:
        report = n.deploy_configuration(name, {**before, **fragment})
        assert report is not None and report.status == model.ConfigurationValidityStatus.REJECTED, what
        assert says in report.message and "\n" not in report.message, (what, report.message)
        assert n.components[name].config == before, f"{what}: the configuration is as it was"
    reply = core.command(name, {"id": "r1", "command": "reload_model", "args": {"path": "/etc"}})
    assert not reply["ok"] and "outside remote.model_dirs" in reply["error"], reply
    status = core.command(name, {"id": "s1", "command": "status"})["result"]
    assert status["running"] is True and status["config_version"] == 0, "nothing was applied"
    assert internal.accepted == 0
    nothing_written(tmp_path)
    assert core.stop_all() == [0]


def test_a_local_hook_fired_by_a_deployment_rule_gets_no_ipc_token(
        core: Core, inference_recipe: dict[str, Any], model_recipe: dict[str, Any],
        model_artifact: tuple[Path, Any], demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
        local_settings: LocalSettings, tmp_path: Path) -> None:
    env_out = tmp_path / "hook-env.txt"
    local_settings(strict_settings(demo_pkgs, demo_media, env_out))
    name = inference_recipe["ComponentName"]
    start_component(core, inference_recipe, model_recipe, model_artifact, demo_media[0])
    n = core.nucleus
    before = json.loads(json.dumps(n.components[name].config))
    report = n.deploy_configuration(name, {**before, "rules": [
        {**FACE_RULE, "actions": [{"type": "command", "hook": "env_dump"}]}]})
    assert report is not None and report.status == model.ConfigurationValidityStatus.ACCEPTED, report
    n.wait_for(lambda: env_out.is_file() and env_out.stat().st_size > 0, 60, "the hook ran")
    names = {line.split("=", 1)[0] for line in env_out.read_text().splitlines() if "=" in line}
    assert names and not {n for n in names if n in ("SVCUID", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
                          or n.startswith(("AWS_", "GG_", "IOTEDGE_"))}, names
    assert core.stop_all() == [0]
