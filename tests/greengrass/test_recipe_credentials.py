"""The inference recipe declares the token exchange service (AWS credentials for the cloud fallback's
InvokeEndpoint and the data loop's S3 uploads) as a SOFT dependency, always; it stays within the 16,000 bytes GDK
and the cloud accept, and a one-platform render within the 8196 bytes Greengrass Lite reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeinfer.greengrass.recipes import MAX_RECIPE_BYTES, InferenceOptions, load_recipe, render_inference, to_json
from edgeinfer.greengrass.recipes.lite import MAX_LITE_RECIPE_BYTES, lite_problems
from edgeinfer.greengrass.recipes.platforms import PLATFORMS, select
from edgeinfer.greengrass.recipes.schema import schema_problems

from .conftest import BUCKET, VERSION
from .test_recipes import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
TES = "aws.greengrass.TokenExchangeService"


def test_the_token_exchange_service_is_a_soft_dependency_of_every_render(inference_recipe: dict[str, Any],
                                                                        model_artifact) -> None:
    assert inference_recipe["ComponentDependencies"][TES] == {"VersionRequirement": ">=2.0.0 <3.0.0",
                                                              "DependencyType": "SOFT"}
    cpu = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name),
                           select(["linux-amd64"]))
    assert cpu["ComponentDependencies"][TES]["DependencyType"] == "SOFT", "whatever the platform"
    assert schema_problems(inference_recipe, SCHEMA) == []


def test_the_committed_recipe_declares_it_and_every_render_keeps_to_the_size_limits(model_artifact) -> None:
    committed, _ = load_recipe(ROOT / "recipes" / f"com.edgeinfer.Inference-{VERSION}.yaml")
    assert committed["ComponentDependencies"][TES]["DependencyType"] == "SOFT"
    assert len((ROOT / "recipes" / f"com.edgeinfer.Inference-{VERSION}.yaml").read_bytes()) <= MAX_RECIPE_BYTES
    assert len(to_json(committed).encode()) <= MAX_RECIPE_BYTES
    for p in PLATFORMS:
        one = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name,
                                                defaults="minimal"), select([p.key]))
        size = len(to_json(one).encode())
        if p.key in ("linux-amd64", "linux-aarch64"):  # the manifests Greengrass Lite selects
            assert size <= MAX_LITE_RECIPE_BYTES and lite_problems(one) == [], (p.key, size)
