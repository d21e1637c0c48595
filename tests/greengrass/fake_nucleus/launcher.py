"""Start a component as the nucleus would from its recipe: pick the manifest for this host, substitute
recipe variables, unpack ZIP artifacts to ``artifacts:decompressedPath``, honour ``Skipif``, set the
lifecycle's environment plus the nucleus's own (socket, SVCUID, thing name), run the script with
``sh -c`` in the component's work folder, and send SIGTERM to stop it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .nucleus import FakeNucleus

HOST = {"os": "linux", "architecture": "amd64"}
VARIABLE = re.compile(r"\{(?:(?P<dep>[A-Za-z0-9\-_.]+):)?(?P<ns>artifacts|work|configuration|kernel|iot):"
                      r"(?P<key>[^{}]+)\}")


def platform_matches(want: dict[str, str], host: dict[str, str]) -> bool:
    for key, value in want.items():
        have = host.get(key)
        if value == "*":
            continue
        if value.startswith("/") and value.endswith("/"):
            if have is None or not re.fullmatch(value[1:-1], have):
                return False
        elif have != value:
            return False
    return True


def select_manifest(recipe: dict[str, Any], host: dict[str, str] = HOST) -> dict[str, Any]:
    for m in recipe["Manifests"]:
        if platform_matches(m.get("Platform") or {}, host):
            return m
    raise LookupError(f"no manifest of {recipe['ComponentName']} matches {host}")


@dataclass
class Layout:
    """The nucleus's folders under one root (like /greengrass/v2)."""

    root: Path

    def work(self, component: str) -> Path:
        return self.root / "work" / component

    def artifacts(self, component: str, version: str) -> Path:
        return self.root / "packages" / "artifacts" / component / version

    def unarchived(self, component: str, version: str) -> Path:
        return self.root / "packages" / "artifacts-unarchived" / component / version


def install_artifact(layout: Layout, recipe: dict[str, Any], artifact: Path) -> Path:
    """Place an artifact as the nucleus does (and unpack it when the recipe says ZIP)."""
    name, version = recipe["ComponentName"], recipe["ComponentVersion"]
    entry = next(a for a in select_manifest(recipe).get("Artifacts", []) if a["URI"].endswith("/" + artifact.name))
    target = layout.artifacts(name, version) / artifact.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(artifact.read_bytes())
    if entry.get("Unarchive") == "ZIP":
        dest = layout.unarchived(name, version) / artifact.name.removesuffix(".zip")
        with zipfile.ZipFile(target) as zf:
            zf.extractall(dest)
        return dest
    return target


class Interpolator:
    def __init__(self, layout: Layout, recipe: dict[str, Any], versions: dict[str, str], thing: str,
                 config: dict[str, Any]) -> None:
        self.layout, self.recipe, self.versions, self.thing, self.config = layout, recipe, versions, thing, config

    def __call__(self, text: str) -> str:
        return VARIABLE.sub(self._one, text)

    def _one(self, m: re.Match[str]) -> str:
        comp = m.group("dep") or self.recipe["ComponentName"]
        ns, key = m.group("ns"), m.group("key")
        version = self.versions.get(comp, self.recipe["ComponentVersion"])
        if ns == "iot" and key == "thingName":
            return self.thing
        if ns == "work" and key == "path":
            return str(self.layout.work(comp))
        if ns == "artifacts":
            base = self.layout.unarchived if key == "decompressedPath" else self.layout.artifacts
            return str(base(comp, version))
        if ns == "kernel" and key == "rootPath":
            return str(self.layout.root)
        if ns == "configuration" and m.group("dep") is None:
            node: Any = self.config
            for part in key.lstrip("/").split("/"):
                node = node.get(part) if isinstance(node, dict) else None
            return m.group(0) if node is None else str(node)
        return m.group(0)  # the nucleus leaves what it cannot resolve


def skip(step: dict[str, Any] | str, interp: Interpolator) -> bool:
    if isinstance(step, str) or "Skipif" not in step:
        return False
    kind, _, arg = interp(step["Skipif"]).partition(" ")
    return Path(arg.strip()).exists() if kind == "exists" else False


def phase(lifecycle: dict[str, Any], name: str) -> Any:
    """A lifecycle phase as the Java nucleus finds it: keys match in any case."""
    return next((v for k, v in lifecycle.items() if k.lower() == name), None)


def script(step: dict[str, Any] | str) -> str:
    return step if isinstance(step, str) else step["Script"]


def launch(nucleus: FakeNucleus, layout: Layout, recipe: dict[str, Any], versions: dict[str, str],
           log_path: Path) -> subprocess.Popen[bytes]:
    """Run Install (unless Skipif holds) then start Run. The component must be added to the nucleus."""
    name = recipe["ComponentName"]
    comp = nucleus.components[name]
    interp = Interpolator(layout, recipe, versions, nucleus.thing_name, comp.config)
    lifecycle = select_manifest(recipe)["Lifecycle"]
    work = layout.work(name)
    work.mkdir(parents=True, exist_ok=True)
    # EDGEINFER_LOCAL_CONFIG: the device's local settings file (on a real core /etc/edgeinfer/local.yaml, which a
    # test cannot write); the test's own stands in for it
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR", "EDGEINFER_LOCAL_CONFIG") if k in os.environ}
    env.update({k: interp(str(v)) for k, v in (lifecycle.get("Setenv") or {}).items()})
    env.update(nucleus.environment(name))
    log = log_path.open("ab")
    install = phase(lifecycle, "install")
    if install is not None and not skip(install, interp):
        done = subprocess.run(["sh", "-c", interp(script(install))], cwd=work, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=int(install.get("Timeout", 120)), check=False)
        if done.returncode != 0:
            raise RuntimeError(f"Install of {name} failed with {done.returncode}; see {log_path}")
    return subprocess.Popen(["sh", "-c", interp(script(phase(lifecycle, "run")))], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    """SIGTERM, as the nucleus stops a component, then wait for the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)
