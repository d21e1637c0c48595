"""A real Greengrass Lite core in a folder: its daemons (ggconfigd, ggpubsubd, ggipcd, iotcored) without
systemd in a network and mount namespace of their own, iotcored connected over mutual TLS to a Mosquitto
standing in for IoT Core (the namespace's 127.0.0.1:8883 is bridged to the broker's Unix socket by
tests/azure/netns_launch.py), components laid out as Lite's deployment daemon leaves them
(``packages/recipes/<name>-<version>.json``, ``packages/artifacts-unarchived/...``, ``work/<name>``) and
started as its units start them (launch.py: the unit's cgroup, then Lite's own recipe-runner).

What is simulated: the deployment daemon's downloads (the files are placed) and the install phase's venv
(as in tests/greengrass/harness.py); the configuration comes from ggconfigd's config.yaml, as on a device
provisioned by hand.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeinfer.core.config import deep_merge
from tests.azure.broker import free_port
from tests.telemetry.pki import Pki, make_pki

ROOT = Path(__file__).resolve().parents[2]
NETNS_LAUNCH = ROOT / "tests" / "azure" / "netns_launch.py"
DAEMONS = Path(__file__).with_name("daemons.py")
SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"


@dataclass
class Broker:
    """Mosquitto with mutual TLS on a Unix socket (iotcored's IoT Core) and plain MQTT on loopback (the test)."""

    folder: Path
    pki: Pki
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def tls_socket(self) -> Path:
        return self.folder / "iot.sock"

    def start(self) -> Broker:
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join([
            "user root", "persistence false", "allow_anonymous true", "log_dest stderr",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            f"listener 0 {self.tls_socket}", f"cafile {self.pki.ca}", f"certfile {self.pki.server_cert}",
            f"keyfile {self.pki.server_key}", "require_certificate true", "use_identity_as_username true",
            f"listener {self.port} 127.0.0.1"]) + "\n")
        log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        _wait_line(self.folder / "mosquitto.log", b" running", self.proc, 10)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def _wait_line(log: Path, text: bytes, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    done = threading.Event()

    def watch() -> None:
        with log.open("rb") as f:
            while not done.is_set():
                line = f.readline()
                if text in line:
                    done.set()
                elif not line:
                    if proc.poll() is not None:
                        return
                    done.wait(0.05)  # tailing a file another process writes

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t.join(timeout_s)
    if not done.is_set():
        done.set()
        raise RuntimeError(f"{proc.args} did not log {text!r}: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class LiteCore:
    bin: Path
    folder: Path
    thing: str
    root: Path = field(init=False)  # rootPath: short, the IPC socket lives there
    broker: Broker = field(init=False)
    nucleus: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ggl-", dir="/tmp"))
        self.broker = Broker(self.folder / "broker", make_pki(self.folder / "pki"))
        self.broker.folder.mkdir(parents=True, exist_ok=True)

    @property
    def ipc_socket(self) -> str:
        return str(self.root / "gg-ipc.socket")

    # -- components, as the deployment daemon leaves them ---------------------------------------------
    def install(self, recipe: dict[str, Any], config_merge: dict[str, Any] | None = None,
                zip_artifacts: tuple[Path, ...] = ()) -> None:
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        recipes = self.root / "packages" / "recipes"
        recipes.mkdir(parents=True, exist_ok=True)
        (recipes / f"{name}-{version}.json").write_text(json.dumps(recipe, separators=(",", ":")))
        for art in zip_artifacts:
            dest = self.root / "packages" / "artifacts-unarchived" / name / version / art.name.removesuffix(".zip")
            with zipfile.ZipFile(art) as zf:
                zf.extractall(dest)
        (self.root / "work" / name).mkdir(parents=True, exist_ok=True)
        defaults = copy.deepcopy(recipe.get("ComponentConfiguration", {}).get("DefaultConfiguration", {}))
        self.services[name] = {"version": version, "configuration": deep_merge(defaults, config_merge or {})}

    def simulate_install(self, recipe: dict[str, Any]) -> None:
        """The install phase's outcome: the venv its script checks for, running this environment's python."""
        venv = self.root / "work" / recipe["ComponentName"] / f"venv-{recipe['ComponentVersion']}"
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        shim = venv / "bin" / "python"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
        (venv / ".edgeinfer-installed").touch()

    # -- the nucleus ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.broker.start()
        pki = self.broker.pki
        config = {"system": {"privateKeyPath": str(pki.client_key), "certificateFilePath": str(pki.client_cert),
                             "rootCaPath": str(pki.ca), "rootPath": str(self.root), "thingName": self.thing},
                  "services": {"aws.greengrass.NucleusLite": {"componentType": "NUCLEUS", "configuration": {
                      "awsRegion": "us-east-1", "iotDataEndpoint": "localhost", "iotCredEndpoint": "localhost",
                      "runWithDefault": {"posixUser": "root:root"}}}}}
        state = self.folder / "nucleus"
        state.mkdir(parents=True, exist_ok=True)
        (state / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        # one fragment per component, as deployments store them: ggconfigd decodes each file as one object of
        # at most 255 values (GG_MAX_OBJECT_SUBOBJECTS), which the nucleus and a component together exceed
        fragments = state / "config.d"
        fragments.mkdir(exist_ok=True)
        for name, service in self.services.items():
            (fragments / f"{name}.yaml").write_text(yaml.safe_dump({"services": {name: service}}, sort_keys=False))
        # tesd's port, as a Lite install's token exchange daemon publishes it: recipe-runner reads it for every
        # component that depends on aws.greengrass.TokenExchangeService (edgeinfer does, for cloud fallback and
        # captures) and refuses to start one without it. No test here asks it for credentials.
        tes = {"services": {"aws.greengrass.TokenExchangeService": {"version": "2.6.0",
                                                                    "configuration": {"port": "8090"}}}}
        (fragments / "aws.greengrass.TokenExchangeService.yaml").write_text(yaml.safe_dump(tes, sort_keys=False))
        cmd = ["unshare", "--net", "--mount", "--propagation", "private", sys.executable, str(NETNS_LAUNCH),
               "--forward", f"8883={self.broker.tls_socket}", "--", sys.executable, str(DAEMONS),
               "--bin", str(self.bin), "--config", str(state / "config.yaml"), "--state", str(state)]
        self.nucleus = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=(state / "nucleus.log").open("ab"))
        assert self.nucleus.stdout is not None
        ready = self.nucleus.stdout.readline()  # daemons.py says "ready" once every daemon listens
        if ready.strip() != b"ready":
            raise RuntimeError(f"Greengrass Lite did not start: {self.logs()}")
        _wait_line(state / "iotcored.log", b"Connected to IoT core", self.nucleus, 30)

    def logs(self) -> str:
        state = self.folder / "nucleus"
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(state.glob("*.log")))

    def env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "TMPDIR", "EDGEINFER_LOCAL_CONFIG")
        return {**{k: os.environ[k] for k in keep if k in os.environ}, SOCKET_ENV: self.ipc_socket}

    def start_component(self, name: str) -> subprocess.Popen[bytes]:
        """The component's unit: its cgroup, then recipe-runner with the run phase."""
        log = (self.folder / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "tests.greengrass_lite.launch", "--component", name,
                                 "--bin", str(self.bin), "--run", self.services[name]["version"]],
                                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def component_log(self, name: str) -> str:
        p = self.folder / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def svcuid(self, name: str) -> str:
        """A token to act as ``name`` over IPC (the test as the component's deployer)."""
        out = subprocess.run([sys.executable, "-m", "tests.greengrass_lite.launch", "--component", name,
                              "--bin", str(self.bin), "--svcuid"], cwd=ROOT, env=self.env(), capture_output=True,
                             check=True, timeout=30)
        return out.stdout.decode().strip()

    def stop_component(self, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
        """SIGTERM, as systemd stops the unit."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def stop(self) -> None:
        for p in self.procs:
            self.stop_component(p, 30)
        if self.nucleus is not None and self.nucleus.poll() is None:
            self.nucleus.send_signal(signal.SIGTERM)
            try:
                self.nucleus.wait(20)
            except subprocess.TimeoutExpired:
                self.nucleus.kill()
                self.nucleus.wait(5)
        self.broker.stop()
        for name in self.services:
            for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup"):
                group = Path(root) / f"ggl.{name}.service"
                if group.is_dir():
                    with contextlib.suppress(OSError):  # still holds a process, or was made by someone else
                        group.rmdir()
        shutil.rmtree(self.root, ignore_errors=True)
