"""The project's own recipe checks, stricter than the Greengrass JSON schema (which lower-cases every
key first, so ``Lifecyle`` or ``run`` pass it) and needing nothing outside the package.

Checked: exact key case at every level, semantic versions, npm-style dependency ranges, known
lifecycle steps and step keys, artifact URIs/unarchive/permissions, recipe variables (dependencies
they name must be declared), IPC policies (known operations, never a bare wildcard), the 16,000-byte
limit, and that every configuration key is known to the config schema. All problems are collected
and reported together.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ...core import config as cfgmod
from .. import MODEL_COMPONENT_PREFIX
from ..errors import RecipeError
from .info import ModelPackageInfo
from .io import to_json, to_yaml
from .semver import VersionRange, is_semver

MAX_RECIPE_BYTES = 16_000
FORMAT_VERSION = "2020-01-25"
NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,128}$")
TOP_KEYS = {"RecipeFormatVersion", "ComponentName", "ComponentVersion", "ComponentDescription", "ComponentPublisher",
            "ComponentConfiguration", "ComponentDependencies", "ComponentType", "ComponentSource", "Manifests",
            "Lifecycle"}
REQUIRED_TOP = ("RecipeFormatVersion", "ComponentName", "ComponentVersion", "ComponentPublisher", "Manifests")
MANIFEST_KEYS = {"Name", "Platform", "Lifecycle", "Selections", "Artifacts"}
#: lifecycle phases in lower case: the Java nucleus matches them in any case, Greengrass Lite only so
LIFECYCLE_STEPS = {"Setenv", "bootstrap", "install", "startup", "run", "shutdown", "recover"}
STEP_KEYS = {"Script", "RequiresPrivilege", "Skipif", "Timeout", "Setenv"}
ARTIFACT_KEYS = {"URI", "Unarchive", "Permission", "Digest", "Algorithm"}
PERMISSIONS = {"NONE", "OWNER", "ALL"}
POLICY_KEYS = {"policyDescription", "operations", "resources"}
#: IPC authorization namespaces -> the operations each one governs.
IPC_OPERATIONS: dict[str, set[str]] = {
    "aws.greengrass.ipc.mqttproxy": {"PublishToIoTCore", "SubscribeToIoTCore"},
    "aws.greengrass.ipc.pubsub": {"PublishToTopic", "SubscribeToTopic"},
    "aws.greengrass.ipc.componentmetric": {"PutComponentMetric"},
    "aws.greengrass.ShadowManager": {"GetThingShadow", "UpdateThingShadow", "DeleteThingShadow",
                                     "ListNamedShadowsForThing"},
    "aws.greengrass.SecretManager": {"GetSecretValue"},
}
VARIABLE = re.compile(r"\{([^{}\s]+)\}")
SELF_VARIABLES = re.compile(r"^(configuration:/.*|artifacts:(path|decompressedPath)|work:path|kernel:rootPath|"
                            r"iot:thingName)$")
DEP_VARIABLE = re.compile(r"^(?P<dep>[a-zA-Z0-9\-_.]+):"
                          r"(configuration:/.*|artifacts:(path|decompressedPath)|work:path)$")
ARCHIVE_NOT_ZIP = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".7z", ".rar")


class _Problems(list[str]):
    def keys(self, where: str, node: Any, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(node, dict):
            self.append(f"{where} must be a mapping")
            return {}
        for key in node:
            if key not in allowed:
                near = next((a for a in allowed if a.lower() == str(key).lower()), None)
                hint = f" (Greengrass keys are case-sensitive: write {near!r})" if near else \
                    f" (known: {', '.join(sorted(allowed))})"
                self.append(f"{where}: unknown key {key!r}{hint}")
        for key in required:
            if key not in node:
                self.append(f"{where}: missing {key!r}")
        return node


def check_recipe(recipe: dict[str, Any], text: str | None = None) -> None:
    """Raise RecipeError listing every problem, or return quietly. ``text``: the file as written, if any."""
    problems = recipe_problems(recipe, text)
    if problems:
        name = recipe.get("ComponentName", "?") if isinstance(recipe, dict) else "?"
        raise RecipeError(f"recipe {name} {recipe.get('ComponentVersion', '') if isinstance(recipe, dict) else ''} "
                          f"is invalid: {'; '.join(problems)}", "fix the recipe (or its template) and render again")


def recipe_problems(recipe: dict[str, Any], text: str | None = None) -> list[str]:
    p = _Problems()
    top = p.keys("recipe", recipe, TOP_KEYS, REQUIRED_TOP)
    if str(top.get("RecipeFormatVersion", FORMAT_VERSION)) != FORMAT_VERSION:
        p.append(f"RecipeFormatVersion must be {FORMAT_VERSION!r}")
    name = str(top.get("ComponentName", ""))
    if "ComponentName" in top and not NAME.match(name):
        p.append(f"ComponentName {name!r} must be 1-128 characters of letters, digits, '-', '_' and '.'")
    if name.startswith("aws.greengrass"):
        p.append(f"ComponentName {name!r} uses the prefix reserved for AWS public components")
    version = top.get("ComponentVersion")
    if version is not None and (not isinstance(version, str) or not is_semver(version) or len(version) > 64):
        p.append(f"ComponentVersion {version!r} is not a semantic version (MAJOR.MINOR.PATCH, quoted in YAML)")
    deps = top.get("ComponentDependencies") or {}
    _dependencies(p, deps)
    _configuration(p, name, top.get("ComponentConfiguration"))
    manifests = top.get("Manifests")
    if "Manifests" in top and (not isinstance(manifests, list) or not manifests):
        p.append("Manifests must be a non-empty list")
    for i, m in enumerate(manifests if isinstance(manifests, list) else []):
        _manifest(p, f"Manifests[{i}]", m, set(deps) if isinstance(deps, dict) else set(), name)
    if not p:
        _size(p, recipe, text)
    return list(p)


def _dependencies(p: _Problems, deps: Any) -> None:
    if not isinstance(deps, dict):
        p.append("ComponentDependencies must be a mapping of component name -> requirement")
        return
    for dep, spec in deps.items():
        where = f"ComponentDependencies.{dep}"
        if not NAME.match(str(dep)):
            p.append(f"{where}: invalid component name")
        body = p.keys(where, spec, {"VersionRequirement", "DependencyType"}, ("VersionRequirement",))
        try:
            VersionRange.parse(str(body.get("VersionRequirement", "*")))
        except ValueError as exc:
            p.append(f"{where}.VersionRequirement: {exc}")
        if body.get("DependencyType", "HARD") not in ("HARD", "SOFT"):
            p.append(f"{where}.DependencyType must be HARD or SOFT")


def _configuration(p: _Problems, name: str, conf: Any) -> None:
    if conf is None:
        return
    body = p.keys("ComponentConfiguration", conf, {"DefaultConfiguration"})
    defaults = body.get("DefaultConfiguration", {})
    if not isinstance(defaults, dict):
        p.append("ComponentConfiguration.DefaultConfiguration must be a mapping")
        return
    _access_control(p, defaults.get("accessControl", {}))
    rest = {k: v for k, v in defaults.items() if k != "accessControl"}
    if name.startswith(MODEL_COMPONENT_PREFIX):
        try:
            ModelPackageInfo.model_validate(rest.get("package", {}))
        except ValidationError as exc:
            p.append(f"DefaultConfiguration.package: {cfgmod.one_line(exc)}")
        if extra := set(rest) - {"package"}:
            p.append(f"DefaultConfiguration: unknown key(s) {sorted(extra)} in a model component")
        return
    try:
        cfgmod.EdgeInferConfig.model_validate(rest)
    except ValidationError as exc:
        p.append(f"DefaultConfiguration is not a valid edgeinfer config: {cfgmod.one_line(exc)}")


def _access_control(p: _Problems, acl: Any) -> None:
    for namespace, policies in p.keys("accessControl", acl, set(IPC_OPERATIONS)).items():
        if not isinstance(policies, dict) or not policies:
            p.append(f"accessControl.{namespace} must map policy ids to policies")
            continue
        for pid, policy in policies.items():
            where = f"accessControl.{namespace}.{pid}"
            body = p.keys(where, policy, POLICY_KEYS, ("operations", "resources"))
            ops, res = body.get("operations"), body.get("resources")
            if not isinstance(ops, list) or not ops:
                p.append(f"{where}.operations must be a non-empty list")
            else:
                for op in ops:
                    bare = str(op).removeprefix("aws.greengrass#")
                    if op == "*" or not str(op).startswith("aws.greengrass#") or bare not in IPC_OPERATIONS[namespace]:
                        p.append(f"{where}: operation {op!r} is not one of "
                                 f"{sorted('aws.greengrass#' + o for o in IPC_OPERATIONS[namespace])}")
            if not isinstance(res, list) or not res:
                p.append(f"{where}.resources must be a non-empty list")
            else:
                for r in res:
                    if not isinstance(r, str) or not r.strip() or set(r.replace("/", "")) <= {"*", "#", "+"}:
                        p.append(f"{where}: resource {r!r} grants everything; scope it to the component's own topics")


def _manifest(p: _Problems, where: str, m: Any, deps: set[str], name: str) -> None:
    body = p.keys(where, m, MANIFEST_KEYS)
    platform = body.get("Platform", {})
    if not isinstance(platform, dict) or not all(isinstance(v, str) for v in platform.values()):
        p.append(f"{where}.Platform must map attribute names to strings")
    lifecycle = p.keys(f"{where}.Lifecycle", body.get("Lifecycle", {}), LIFECYCLE_STEPS)
    if "run" in lifecycle and "startup" in lifecycle:
        p.append(f"{where}.Lifecycle: define run or startup, not both")
    for step, spec in lifecycle.items():
        if step == "Setenv":
            _setenv(p, f"{where}.Lifecycle.Setenv", spec, deps)
        elif step in LIFECYCLE_STEPS:
            _step(p, f"{where}.Lifecycle.{step}", spec, deps)
    artifacts = body.get("Artifacts", [])
    if not isinstance(artifacts, list):
        p.append(f"{where}.Artifacts must be a list")
        return
    seen: set[str] = set()
    for i, a in enumerate(artifacts):
        _artifact(p, f"{where}.Artifacts[{i}]", a, seen, name)


def _step(p: _Problems, where: str, spec: Any, deps: set[str]) -> None:
    if isinstance(spec, str):
        _variables(p, where, spec, deps)
        return
    body = p.keys(where, spec, STEP_KEYS, ("Script",))
    if "Script" in body:
        if not isinstance(body["Script"], str) or not body["Script"].strip():
            p.append(f"{where}.Script must be a non-empty string")
        else:
            _variables(p, f"{where}.Script", body["Script"], deps)
    if "Skipif" in body and not re.match(r"^(onpath|exists)\s+\S", str(body["Skipif"])):
        p.append(f"{where}.Skipif must be 'onpath <runnable>' or 'exists <file>'")
    if "Skipif" in body:
        _variables(p, f"{where}.Skipif", str(body["Skipif"]), deps)
    timeout = body.get("Timeout")
    if timeout is not None and (isinstance(timeout, bool) or not str(timeout).isdigit() or int(timeout) <= 0):
        p.append(f"{where}.Timeout must be a positive whole number of seconds")
    if not isinstance(body.get("RequiresPrivilege", False), bool):
        p.append(f"{where}.RequiresPrivilege must be true or false")
    if "Setenv" in body:
        _setenv(p, f"{where}.Setenv", body["Setenv"], deps)


def _setenv(p: _Problems, where: str, env: Any, deps: set[str]) -> None:
    if not isinstance(env, dict):
        p.append(f"{where} must map variable names to values")
        return
    for k, v in env.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(k)):
            p.append(f"{where}: {k!r} is not an environment variable name")
        if not isinstance(v, str | int | float | bool):
            p.append(f"{where}.{k} must be a scalar")
        else:
            _variables(p, f"{where}.{k}", str(v), deps)


def _variables(p: _Problems, where: str, text: str, deps: set[str]) -> None:
    for var in VARIABLE.findall(text):
        if SELF_VARIABLES.match(var):
            continue
        m = DEP_VARIABLE.match(var)
        if m and m.group("dep") in deps:
            continue
        if m:
            p.append(f"{where}: recipe variable {{{var}}} names {m.group('dep')}, which is not a declared dependency")
        else:
            p.append(f"{where}: unknown recipe variable {{{var}}}")


def _artifact(p: _Problems, where: str, a: Any, seen: set[str], name: str) -> None:
    body = p.keys(where, a, ARTIFACT_KEYS, ("URI",))
    uri = str(body.get("URI", ""))
    if not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/\S+$", uri) and not uri.startswith("docker:"):
        p.append(f"{where}.URI {uri!r} must be s3://bucket/key")
    filename = uri.rsplit("/", 1)[-1]
    if filename in seen:
        p.append(f"{where}: two artifacts named {filename!r} in one manifest")
    seen.add(filename)
    unarchive = body.get("Unarchive", "NONE")
    if unarchive not in ("ZIP", "NONE"):
        p.append(f"{where}.Unarchive must be ZIP or NONE")
    if unarchive == "ZIP" and filename.lower().endswith(ARCHIVE_NOT_ZIP):
        p.append(f"{where}: Greengrass unarchives ZIP only, {filename!r} would not be unpacked")
    perm = p.keys(f"{where}.Permission", body.get("Permission", {}), {"Read", "Execute"})
    for k, v in perm.items():
        if v not in PERMISSIONS:
            p.append(f"{where}.Permission.{k} must be one of {sorted(PERMISSIONS)}")
    if name.startswith(MODEL_COMPONENT_PREFIX) and perm.get("Read") != "ALL":
        p.append(f"{where}: a model artifact needs Permission.Read ALL so the inference component can read it")


def _size(p: _Problems, recipe: dict[str, Any], text: str | None) -> None:
    forms = [("YAML", to_yaml(recipe)), ("JSON", to_json(recipe))] + ([("written", text)] if text else [])
    for fmt, body in forms:
        size = len(body.encode())
        if size > MAX_RECIPE_BYTES:
            p.append(f"the recipe is {size} bytes as {fmt}; Greengrass accepts at most {MAX_RECIPE_BYTES}")
