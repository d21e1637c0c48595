"""Render the component recipes from their templates (``inference.yaml``, ``model.yaml``).

Template fields are ``${name}``; a value that is exactly one field may become a list or mapping.
Greengrass recipe variables (``{work:path}``, ``{iot:thingName}``) are left for the nucleus. Every
rendered recipe passes ``checks.check_recipe`` before it is returned: nothing invalid leaves here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from ... import __version__
from ...core.config import defaults_json
from .. import INFERENCE_COMPONENT, model_component_name, topics
from ..errors import RecipeError
from .checks import check_recipe
from .info import ModelPackageInfo
from .io import recipe_filename, to_yaml
from .platforms import PLATFORMS, Platform, runtime_artifact_name
from .semver import is_semver

FIELD = re.compile(r"\$\{([a-z_]+)\}")
SHA256 = re.compile(r"[0-9a-f]{64}")
PUBLISHER = "edgeinfer"
RUNTIME_PREFIX = "edgeinfer/runtime"
MODEL_ARTIFACT = "model.zip"  # unpacks to {...:artifacts:decompressedPath}/model
INSTALL_TIMEOUT_S = 900
GPU_STEP = '"$VENV/bin/python" -c \'import importlib.metadata as m; m.version("onnxruntime-gpu")\'  # GPU bundle'
CPU_STEP = ": CPU host, onnxruntime from the bundle"
SECRET_MANAGER = "aws.greengrass.SecretManager"
SECRET_MANAGER_RANGE = ">=2.1.0 <3.0.0"  # 2.1.0: GetSecretValue for Lambda-free components; any 2.x answers it
# a Secrets Manager secret ARN (the form the secret manager component and its IPC authorizer accept)
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")


@dataclass(frozen=True, slots=True)
class InferenceOptions:
    version: str
    bucket: str = "amzn-s3-demo-bucket"  # the AWS docs placeholder; a valid bucket name
    model: str = "blazeface-full-range"
    model_range: str = ">=1.0.0"
    component_name: str = INFERENCE_COMPONENT
    package_version: str = __version__
    publisher: str = PUBLISHER
    #: platform key -> sha256 of its runtime bundle ZIP: content-addressed artifact keys (see runtime_artifact_key)
    runtime_sha256: Mapping[str, str] = field(default_factory=dict)
    #: Secrets Manager ARNs the component may read through aws.greengrass.SecretManager (the model decryption key)
    decryption_secrets: tuple[str, ...] = ()
    #: DefaultConfiguration with every schema default ("full", what the console shows), or only what differs from
    #: them on Greengrass ("minimal": the component applies the rest itself). Greengrass Lite needs minimal: it
    #: reads a recipe as one object of at most 255 values (recipes/lite.py)
    defaults: Literal["full", "minimal"] = "full"


def _template(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def fill(node: Any, values: dict[str, Any]) -> Any:
    """Substitute ``${field}`` in keys and string values, recursively. Unknown fields raise."""
    if isinstance(node, dict):
        return {fill(k, values): fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if not isinstance(node, str):
        return node
    whole = FIELD.fullmatch(node)
    if whole and not isinstance(values.get(whole.group(1)), str):
        return _value(whole.group(1), values)

    def one(m: re.Match[str]) -> str:
        value = _value(m.group(1), values)
        if not isinstance(value, str | int):
            raise RecipeError(f"template field ${{{m.group(1)}}} is a {type(value).__name__} inside a string",
                              "put the field on its own as the whole value")
        return str(value)

    return FIELD.sub(one, node)


def _value(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise RecipeError(f"template field ${{{name}}} has no value", f"known fields: {', '.join(sorted(values))}")
    return values[name]


def prune_none(d: dict[str, Any]) -> dict[str, Any]:
    """Drop null leaves: Greengrass configuration has no use for them and the schema fills defaults back."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = prune_none(v)
        elif v is not None:
            out[k] = v
    return out


def greengrass_defaults() -> dict[str, Any]:
    """The config schema's defaults, as Greengrass configuration: telemetry goes through the nucleus."""
    data = prune_none(defaults_json())
    data.setdefault("telemetry", {})["transport"] = "greengrass"
    return data


def _platform_values(opts: InferenceOptions, p: Platform) -> dict[str, Any]:
    artifact = runtime_artifact_name(p)
    return {
        "platform_key": p.key, "platform": p.platform_block(),
        "runtime_key": runtime_artifact_key(opts.version, p, opts.runtime_sha256.get(p.key)),
        "runtime_stem": artifact.removesuffix(".zip"),
        "venv_flags": "--system-site-packages" if p.system_site_packages else "--clear",
        "gpu_step": GPU_STEP if p.gpu_runtime else CPU_STEP,
    }


def render_inference(opts: InferenceOptions, platforms: tuple[Platform, ...] = PLATFORMS) -> dict[str, Any]:
    """The inference component's recipe for ``opts.version``: one manifest per platform."""
    for what, v in (("--version", opts.version), ("--package-version", opts.package_version)):
        if not is_semver(v):
            raise RecipeError(f"{what} {v!r} is not a semantic version", "use MAJOR.MINOR.PATCH, e.g. 1.0.0")
    for key, digest in opts.runtime_sha256.items():
        if not SHA256.fullmatch(digest):
            raise RecipeError(f"runtime bundle digest for {key} {digest!r} is not a sha256",
                              "pass the hex sha256 of the bundle ZIP (read it with runtime_digests)")
    tpl = _template("inference.yaml")
    manifest_tpl = tpl.pop("Manifests")[0]
    values: dict[str, Any] = {
        "component_name": opts.component_name, "version": opts.version, "publisher": opts.publisher,
        "model_component": model_component_name(opts.model), "model_range": opts.model_range,
        "publish_topics": topics.publish_topics(topics.THING_VARIABLE, component=opts.component_name),
        "command_topic": topics.command_topic(topics.THING_VARIABLE, opts.component_name),
        "local_results_topic": topics.local_results_topic(opts.component_name), "bucket": opts.bucket,
        "venv": f"{{work:path}}/venv-{opts.version}", "install_timeout_s": INSTALL_TIMEOUT_S,
        "model_stem": MODEL_ARTIFACT.removesuffix(".zip"),
    }
    recipe = fill(tpl, values)
    ordered = sorted(set(platforms), key=PLATFORMS.index)  # the first matching manifest wins: GPU hosts first
    recipe["Manifests"] = [fill(manifest_tpl, {**values, **_platform_values(opts, p)}) for p in ordered]
    conf = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    if opts.decryption_secrets:
        _grant_secrets(recipe, conf, opts)
    base = greengrass_defaults() if opts.defaults == "full" else {"telemetry": {"transport": "greengrass"}}
    if opts.component_name != INFERENCE_COMPONENT:  # another model on the same core: telemetry apart (topics.py)
        base["telemetry"]["topic"] = topics.telemetry_template(opts.component_name)
    recipe["ComponentConfiguration"]["DefaultConfiguration"] = {**base, **conf}
    check_recipe(recipe)
    return recipe


def _grant_secrets(recipe: dict[str, Any], conf: dict[str, Any], opts: InferenceOptions) -> None:
    """The component may read exactly these secrets (GetSecretValue), and the secret manager must run first."""
    for arn in opts.decryption_secrets:
        if not SECRET_ARN.fullmatch(arn) or "*" in arn:
            raise RecipeError(f"--decryption-secret {arn!r} is not a Secrets Manager secret ARN",
                              "pass the full ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX), no "
                              "wildcards: the component may read that one secret")
    conf["accessControl"][SECRET_MANAGER] = {f"{opts.component_name}:secrets:model-key": {
        "policyDescription": "Read the model decryption key (trust.decryption.greengrass_secret)",
        "operations": ["aws.greengrass#GetSecretValue"], "resources": sorted(set(opts.decryption_secrets))}}
    # HARD: the component starts only once the secret manager runs (the key is asked for at the first model load)
    recipe["ComponentDependencies"][SECRET_MANAGER] = {"VersionRequirement": SECRET_MANAGER_RANGE,
                                                      "DependencyType": "HARD"}


def runtime_artifact_key(version: str, platform: Platform, zip_sha256: str | None = None) -> str:
    """The immutable S3 key of a platform's runtime bundle: content-addressed when its sha256 is known (rendered
    from the bundle), else under the component version (a recipe rendered before the bundle was built)."""
    return f"{RUNTIME_PREFIX}/{zip_sha256 or version}/{runtime_artifact_name(platform)}"


def model_artifact_key(model: str, zip_sha256: str) -> str:
    """The immutable, content-addressed S3 key of a model package ZIP."""
    return f"edgeinfer/models/{model}/{zip_sha256}/{MODEL_ARTIFACT}"


def render_model(model: str, version: str, bucket: str, info: ModelPackageInfo,
                 publisher: str = PUBLISHER) -> dict[str, Any]:
    """A model component's recipe: artifacts only, the package ZIP readable by all."""
    if not is_semver(version):
        raise RecipeError(f"model component version {version!r} is not a semantic version", "use MAJOR.MINOR.PATCH")
    values = {
        "component_name": model_component_name(model), "version": version, "publisher": publisher,
        "description": f"edgeinfer model package {info.name} {info.version} ({info.task}, {info.format})",
        "package": info.model_dump(mode="json", exclude_none=True),
        "artifact_uri": f"s3://{bucket}/{model_artifact_key(model, info.zip_sha256)}",
    }
    recipe = fill(_template("model.yaml"), values)
    check_recipe(recipe)
    return recipe


def write_recipes(recipes: list[dict[str, Any]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in recipes:
        p = out / recipe_filename(r)
        p.write_text(to_yaml(r), encoding="utf-8")
        paths.append(p)
    return paths
