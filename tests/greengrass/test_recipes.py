"""Recipes: rendered from one template, valid against the Greengrass schema (when present) and the
project's stricter checks; the checks catch what the schema lets through."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.greengrass import topics
from edgeinfer.greengrass.errors import RecipeError
from edgeinfer.greengrass.recipes import (
    MAX_RECIPE_BYTES,
    InferenceOptions,
    check_recipe,
    greengrass_defaults,
    load_recipe,
    recipe_problems,
    render_inference,
    to_json,
    to_yaml,
)
from edgeinfer.greengrass.recipes.lite import lite_manifests, lite_problems
from edgeinfer.greengrass.recipes.platforms import PLATFORMS, select
from edgeinfer.greengrass.recipes.schema import find_schema, schema_problems
from edgeinfer.greengrass.recipes.semver import Version, VersionRange

from .conftest import BUCKET, VERSION
from .fake_nucleus.auth import allowed

ROOT = Path(__file__).resolve().parents[2]
# the GDK's recipe schema, pinned in the repository (Apache-2.0; SOURCE, LICENSE and NOTICE beside it)
SCHEMA = find_schema(ROOT / "tests" / "data" / "schemas" / "greengrass" / "recipe_schema.json")


def test_rendered_recipes_pass_the_greengrass_schema(inference_recipe, model_recipe) -> None:
    assert schema_problems(inference_recipe, SCHEMA) == []
    assert schema_problems(model_recipe, SCHEMA) == []


def test_schema_lets_through_what_the_project_checks_catch(inference_recipe) -> None:
    r = copy.deepcopy(inference_recipe)
    r["ComponentVersion"] = "1.0"
    r["Manifests"][0]["Lifecyle"] = r["Manifests"][0].pop("Lifecycle")
    assert schema_problems(r, SCHEMA) == []  # the GDK schema is lenient (and lower-cases keys)
    problems = " ".join(recipe_problems(r))
    assert "ComponentVersion '1.0' is not a semantic version" in problems and "unknown key 'Lifecyle'" in problems


def test_default_configuration_comes_from_the_config_schema(inference_recipe) -> None:
    conf = inference_recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert {k: v for k, v in conf.items() if k != "accessControl"} == greengrass_defaults()
    assert conf["telemetry"]["transport"] == "greengrass"


def test_access_control_is_scoped_to_the_components_own_topics(inference_recipe) -> None:
    acl = inference_recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    resources = [r for ns in acl.values() for pol in ns.values() for r in pol["resources"]]
    assert "*" not in resources and all("#" not in r and "*" not in r for r in resources)
    mqtt = "aws.greengrass.ipc.mqttproxy"
    for topic in topics.publish_topics("cam-7"):  # every topic the runtime publishes to is allowed ...
        assert allowed(acl, "cam-7", mqtt, "aws.greengrass#PublishToIoTCore", topic, mqtt_style=True), topic
    assert allowed(acl, "cam-7", mqtt, "aws.greengrass#SubscribeToIoTCore", topics.command_topic("cam-7"), True)
    for topic in ("edgeinfer/cam-8/result", "edgeinfer/cam-7/cmd", "other/topic", "$aws/things/cam-7/shadow/update"):
        assert not allowed(acl, "cam-7", mqtt, "aws.greengrass#PublishToIoTCore", topic, mqtt_style=True), topic
    assert allowed(acl, "cam-7", "aws.greengrass.ipc.pubsub", "aws.greengrass#PublishToTopic",
                   topics.LOCAL_RESULTS_TOPIC)


def test_one_manifest_per_platform_gpu_first_with_install_once_and_timeouts(inference_recipe) -> None:
    manifests = inference_recipe["Manifests"]
    assert [m["Name"] for m in manifests] == [p.key for p in PLATFORMS]
    assert [m["Platform"].get("com.edgeinfer.accelerator") for m in manifests] == ["nvidia", "nvidia", None, None]
    for m in manifests:
        install, run = m["Lifecycle"]["install"], m["Lifecycle"]["run"]
        assert install["Skipif"] == "exists {work:path}/venv-0.1.0/.edgeinfer-installed"
        assert install["Timeout"] > 0 and "--no-index" in install["Script"]
        assert install["Script"].rstrip().endswith('touch "$VENV/.edgeinfer-installed"')
        assert ('--model-dir "{kernel:rootPath}/packages/artifacts-unarchived/com.edgeinfer.Model.blazeface-full-range"'
                ' --model-stem model') in run["Script"]
        assert install["Script"].splitlines()[2] == '[ -e "$VENV/.edgeinfer-installed" ] && exit 0'  # Lite: no Skipif
        assert m["Artifacts"][0]["Unarchive"] == "ZIP" and m["Artifacts"][0]["URI"].endswith(f"{m['Name']}.zip")
    gpu = [m for m in manifests if "nvidia" in m["Platform"].values()]
    assert all("onnxruntime-gpu" in m["Lifecycle"]["install"]["Script"] for m in gpu)
    assert len(to_yaml(inference_recipe).encode()) <= MAX_RECIPE_BYTES
    assert len(to_json(inference_recipe).encode()) <= MAX_RECIPE_BYTES


def test_model_component_is_artifacts_only_and_world_readable(model_recipe) -> None:
    (m,) = model_recipe["Manifests"]
    assert "Lifecycle" not in m and m["Artifacts"][0]["Permission"]["Read"] == "ALL"
    assert m["Artifacts"][0]["Unarchive"] == "ZIP" and m["Artifacts"][0]["URI"].endswith("/model.zip")


def _broken(recipe: dict[str, Any], change) -> list[str]:
    r = copy.deepcopy(recipe)
    change(r)
    return recipe_problems(r)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda r: r["ComponentConfiguration"]["DefaultConfiguration"].update(telemetri={}), "telemetri: unknown key"),
    (lambda r: r["ComponentConfiguration"]["DefaultConfiguration"]["pipeline"].update(queue_size=0),
     "pipeline.queue_size"),
    (lambda r: r["Manifests"][0]["Lifecycle"].update(startup="x"), "define run or startup, not both"),
    (lambda r: r["Manifests"][0]["Lifecycle"].update(Instal="x"), "unknown key 'Instal'"),
    (lambda r: r["Manifests"][0]["Lifecycle"]["install"].update(Timeout=-5), "Timeout must be a positive"),
    (lambda r: r["Manifests"][0]["Lifecycle"]["install"].update(Skipif="if missing x"), "Skipif must be"),
    (lambda r: r["Manifests"][0]["Artifacts"][0].update(URI="s3://amzn-s3-demo-bucket/x/runtime.tar.gz"),
     "Greengrass unarchives ZIP only"),
    (lambda r: r["Manifests"][0]["Artifacts"][0].update(uri="s3://b/x"), "write 'URI'"),
    (lambda r: r["Manifests"][0]["Lifecycle"].update(run="python3 {com.other.Thing:work:path}/x"),
     "names com.other.Thing, which is not a declared dependency"),
    (lambda r: r["Manifests"][0]["Lifecycle"].update(run="echo {iot:thingname}"), "unknown recipe variable"),
    (lambda r: r["ComponentDependencies"]["aws.greengrass.Nucleus"].update(VersionRequirement=">=banana"),
     "not a version comparator"),
    (lambda r: next(iter(r["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
                         ["aws.greengrass.ipc.mqttproxy"].values())).update(resources=["*"]), "grants everything"),
    (lambda r: next(iter(r["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
                         ["aws.greengrass.ipc.pubsub"].values())).update(operations=["*"]), "is not one of"),
    (lambda r: r.update(ComponentName="aws.greengrass.Mine"), "reserved for AWS"),
    (lambda r: r.update(RecipeFormatVersion="2021-01-01"), "RecipeFormatVersion must be"),
    (lambda r: r.update(ComponentDescription="x" * 17_000), "Greengrass accepts at most 16000"),
])
def test_project_checks_name_the_problem(inference_recipe, change, expected: str) -> None:
    problems = " | ".join(_broken(inference_recipe, change))
    assert expected in problems, problems


def test_model_recipe_checks(model_recipe) -> None:
    assert "needs Permission.Read ALL" in " ".join(_broken(
        model_recipe, lambda r: r["Manifests"][0]["Artifacts"][0]["Permission"].update(Read="OWNER")))
    assert "sha256" in " ".join(_broken(
        model_recipe, lambda r: r["ComponentConfiguration"]["DefaultConfiguration"]["package"].update(sha256="x")))


def test_render_rejects_bad_versions() -> None:
    with pytest.raises(RecipeError, match="not a semantic version"):
        render_inference(InferenceOptions(version="v1"))
    with pytest.raises(RecipeError, match="VersionRequirement"):
        render_inference(InferenceOptions(version="1.0.0", model_range="~>1"))


def test_committed_examples_are_current_and_valid() -> None:
    path = ROOT / "recipes" / "com.edgeinfer.Inference-0.1.0.yaml"
    committed, text = load_recipe(path)
    check_recipe(committed, text)
    assert committed == render_inference(InferenceOptions(version="0.1.0")), (
        "recipes/ is stale: re-render it (see recipes/README.md)")
    for other in (ROOT / "recipes").glob("com.edgeinfer.Model.*.yaml"):
        check_recipe(*load_recipe(other))


@pytest.mark.parametrize(("rng", "yes", "no"), [
    (">=1.0.0", ["1.0.0", "7.0.0"], ["0.9.9", "1.0.0-rc.1"]),
    (">=1.0.0 <2.0.0", ["1.9.9"], ["2.0.0"]),
    ("^1.2.0", ["1.2.0", "1.9.0"], ["2.0.0", "1.1.9"]),
    ("^0.2.3", ["0.2.9"], ["0.3.0"]),
    ("~1.2.0", ["1.2.5"], ["1.3.0"]),
    ("1.x", ["1.0.0", "1.5.2"], ["2.0.0"]),
    ("*", ["0.0.1", "9.9.9"], []),
    ("1.0.0 || >=3.0.0", ["1.0.0", "3.1.0"], ["2.0.0"]),
])
def test_version_ranges(rng: str, yes: list[str], no: list[str]) -> None:
    r = VersionRange.parse(rng)
    assert all(r.admits(v) for v in yes) and not any(r.admits(v) for v in no)
    assert Version.parse("1.0.0-rc.1") < Version.parse("1.0.0") < Version.parse("1.0.10")


def test_recipes_greengrass_lite_runs(inference_recipe, model_recipe, model_artifact) -> None:
    """Lite selects the CPU manifests (runtime '*'), never the GPU ones (it ignores the custom attribute); a recipe
    rendered for one platform fits the 8196 bytes Lite reads, the four-platform one does not and says what to do."""
    assert [m["Name"] for m in lite_manifests(inference_recipe)] == ["linux-amd64", "linux-aarch64"]
    assert lite_problems(model_recipe) == []
    too_many, too_big = lite_problems(inference_recipe)
    assert "Greengrass Lite decodes at most 255" in too_many
    assert "Greengrass Lite reads at most 8196" in too_big and "--platform" in too_big
    full = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name),
                            select(["linux-amd64"]))
    (too_many,) = lite_problems(full)  # every schema default: more values than Lite decodes in one object
    assert "Greengrass Lite decodes at most 255" in too_many and "--minimal-defaults" in too_many
    one = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name,
                                            defaults="minimal"), select(["linux-amd64"]))
    assert lite_problems(one) == []
    assert one["ComponentConfiguration"]["DefaultConfiguration"]["telemetry"] == {"transport": "greengrass"}
    assert one["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"] == \
        full["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    classic_only = copy.deepcopy(one)
    classic_only["Manifests"][0]["Lifecycle"]["Run"] = classic_only["Manifests"][0]["Lifecycle"].pop("run")
    classic_only["Manifests"][0]["Lifecycle"]["Run"]["Script"] += " {com.other:work:path}"
    assert lite_problems(classic_only) == [
        "manifest linux-amd64: lifecycle phase 'Run': Greengrass Lite matches 'run' only",
        "manifest linux-amd64: Run uses {com.other:work:path}, which Greengrass Lite does not resolve"]
