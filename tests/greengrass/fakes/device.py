"""What a Greengrass core does with a cloud deployment, played on the fake core: fetch each component's
recipe from the control plane, download its artifacts from S3 and check them against the digests
Greengrass recorded, apply configurationUpdate (reset to the new defaults, then merge), notify the
running component (it may defer), restart the inference component from its recipe, and report the
outcome back to the control plane."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from ..fake_nucleus.launcher import select_manifest, stop
from ..harness import Core
from .greengrassv2 import FakeGreengrassV2

INFERENCE = "com.edgeinfer.Inference"


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def reset(config: dict[str, Any], defaults: dict[str, Any], pointer: str) -> None:
    parts = [_unescape(p) for p in pointer.strip("/").split("/")]
    node, dflt = config, defaults
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        dflt = dflt.get(p, {}) if isinstance(dflt, dict) else {}
    if isinstance(dflt, dict) and parts[-1] in dflt:
        node[parts[-1]] = copy.deepcopy(dflt[parts[-1]])
    else:
        node.pop(parts[-1], None)


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


class DeviceAgent:
    def __init__(self, gg: FakeGreengrassV2, s3: Any, core: Core, thing: str, downloads: Path) -> None:
        self.gg, self.s3, self.core, self.thing, self.downloads = gg, s3, core, thing, downloads
        self.running: dict[str, Any] = {}

    def _recipe(self, name: str, version: str) -> dict[str, Any]:
        got = self.gg.get_component(arn=self.gg._arn(name, version), recipeOutputFormat="YAML")
        return yaml.safe_load(got["recipe"])

    def _artifacts(self, recipe: dict[str, Any]) -> list[Path]:
        paths = []
        for a in select_manifest(recipe).get("Artifacts", []):
            bucket, _, key = a["URI"].removeprefix("s3://").partition("/")
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if base64.b64encode(hashlib.sha256(body).digest()).decode() != a["Digest"]:
                raise RuntimeError(f"artifact {a['URI']} does not match its recorded digest")
            p = self.downloads / recipe["ComponentName"] / recipe["ComponentVersion"] / key.rsplit("/", 1)[-1]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(body)
            paths.append(p)
        return paths

    def apply_next(self, state_timeout: float = 90.0) -> str:
        dep = self.gg.queued(self.thing)[0]
        dep_id = dep["deploymentId"]
        self.gg.report(self.thing, dep_id, "IN_PROGRESS")
        if INFERENCE in self.running:  # NOTIFY_COMPONENTS: ask the running component first
            self.core.nucleus.component_update()
        installed: dict[str, tuple[str, str]] = {}
        inference: dict[str, Any] | None = None
        for name, spec in dep["components"].items():
            recipe = self._recipe(name, spec["componentVersion"])
            if name == INFERENCE:
                inference = {"recipe": recipe, "update": spec.get("configurationUpdate") or {}}
                continue
            self.core.install(recipe, self._artifacts(recipe))
            installed[name] = (spec["componentVersion"], "FINISHED")
        if inference is not None:
            self._restart_inference(inference["recipe"], inference["update"], state_timeout)
            installed[INFERENCE] = (inference["recipe"]["ComponentVersion"], "RUNNING")
        self.gg.report(self.thing, dep_id, "SUCCEEDED", installed)
        return dep_id

    def _restart_inference(self, recipe: dict[str, Any], update: dict[str, Any], timeout: float) -> None:
        defaults = recipe.get("ComponentConfiguration", {}).get("DefaultConfiguration", {})
        old = self.core.nucleus.components.get(INFERENCE)
        config = copy.deepcopy(old.config) if old else copy.deepcopy(defaults)
        for pointer in update.get("reset", []):
            reset(config, defaults, pointer)
        config = merge(config, json.loads(update.get("merge") or "{}"))
        if INFERENCE in self.running:
            stop(self.running.pop(INFERENCE))
            self.core.procs = [p for p in self.core.procs if p.poll() is None]
        self.core.versions[INFERENCE] = recipe["ComponentVersion"]
        self.core.nucleus.add_component(INFERENCE, config)
        self.core.simulate_install(recipe)
        proc = self.core.start(recipe)
        self.core.wait_state(INFERENCE, "RUNNING", proc, timeout)
        self.running[INFERENCE] = proc
