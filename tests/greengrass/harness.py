"""A Greengrass core in a folder: the fake nucleus, the nucleus's directory layout, components
installed from their rendered recipes and artifacts, and the inference component started from its
Run lifecycle as a real process.

What is simulated: the Install step's result (a ``venv-<version>`` whose python is this test
environment's, plus the marker its Skipif checks), because the real step needs the runtime
wheelhouse. Everything after it (Skipif, Setenv, recipe variables, the Run script) is the recipe's.
test_runtime_bundle.py runs the real Install step against a real runtime bundle instead.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeinfer.core.config import deep_merge
from edgeinfer.greengrass import topics

from .fake_nucleus import FakeNucleus
from .fake_nucleus.launcher import Layout, install_artifact, launch, stop
from .fake_nucleus.profiles import CLASSIC, Profile

THING = "edge-cam-01"


def short_socket_dir() -> Path:
    """Unix socket paths are limited to ~107 bytes: pytest's tmp paths can be longer."""
    return Path(tempfile.mkdtemp(prefix="gg-", dir="/tmp"))


@dataclass
class Core:
    root: Path
    nucleus: FakeNucleus
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, thing: str = THING, profile: Profile = CLASSIC) -> Core:
        sock = short_socket_dir() / "ipc.socket"
        nucleus = FakeNucleus(str(sock), thing, profile)
        nucleus.start()
        return cls(root, nucleus)

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def install(self, recipe: dict[str, Any], artifacts: list[Path], config_merge: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """Place artifacts and set the component's configuration: DefaultConfiguration + the deployment's merge."""
        for a in artifacts:
            install_artifact(self.layout, recipe, a)
        name = recipe["ComponentName"]
        self.versions[name] = recipe["ComponentVersion"]
        defaults = copy.deepcopy(recipe.get("ComponentConfiguration", {}).get("DefaultConfiguration", {}))
        config = deep_merge(defaults, config_merge or {})
        self.nucleus.add_component(name, config)
        return config

    def simulate_install(self, recipe: dict[str, Any]) -> None:
        """The outcome of the Install step: the venv its Skipif looks for, running this environment's python."""
        venv = self.layout.work(recipe["ComponentName"]) / f"venv-{recipe['ComponentVersion']}"
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        shim = venv / "bin" / "python"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
        (venv / ".edgeinfer-installed").touch()

    def start(self, recipe: dict[str, Any]) -> subprocess.Popen[bytes]:
        proc = launch(self.nucleus, self.layout, recipe, self.versions, self.log_path(recipe["ComponentName"]))
        self.procs.append(proc)
        return proc

    def log_path(self, component: str) -> Path:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        return self.root / "logs" / f"{component}.log"

    def log(self, component: str) -> str:
        p = self.log_path(component)
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_state(self, component: str, state: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
        def reached() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{component} exited with {proc.returncode}:\n{self.log(component)[-4000:]}")
            return self.nucleus.components[component].state == state

        self.nucleus.wait_for(reached, timeout, f"{component} to report {state}")

    def command(self, component: str, body: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Publish a command from 'the cloud' and wait for the component's reply with the same id."""
        n = self.nucleus
        delivered = n.wait_for(lambda: n.deliver_iot_core(topics.command_topic(n.thing_name, component),
                                                          json.dumps(body).encode(),
                                                          correlation_data=b"corr-" + body["id"].encode()),
                               10, "the command subscription")
        assert delivered == 1  # the component's own channel: no other component on the core hears it

        def reply() -> dict[str, Any] | None:
            for r in n.iot_publishes(topics.reply_topic(n.thing_name, component)):
                data = json.loads(r.payload)
                if data.get("id") == body["id"]:
                    return {**data, "_request": r}
            return None

        return n.wait_for(reply, timeout, f"the reply to command {body['id']}")

    def stop_all(self) -> list[int]:
        codes = [stop(p) for p in self.procs]
        self.procs.clear()
        self.nucleus.stop()
        shutil.rmtree(Path(self.nucleus.path).parent, ignore_errors=True)
        return codes
