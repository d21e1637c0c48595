"""An encrypted model package on a Greengrass core: the component started from its rendered recipe asks the
secret manager for the key over IPC (the real GreengrassCoreIPCClientV2 against the fake nucleus), decrypts
the model in memory and runs it; a recipe that does not grant the secret leaves the component ERRORED with
the fix in its log, and the clear model is never written to the device."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.modelpkg.crypto import encrypt_package
from edgeinfer.greengrass.artifacts import build_model_artifact
from edgeinfer.greengrass.errors import RecipeError
from edgeinfer.greengrass.recipes.render import InferenceOptions, render_inference, render_model
from tests.conftest import LocalSettings, trusting_operator

from .conftest import BUCKET, VERSION, fast_config
from .harness import THING, Core

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:edgeinfer/model-key-AbC123"
NAME = "com.edgeinfer.Inference"


@pytest.fixture
def encrypted(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> tuple[dict[str, Any], Path, bytes]:
    """The demo ONNX package encrypted with a fresh key, as a model component's recipe and artifact."""
    key = os.urandom(32)
    enc = encrypt_package(demo_pkgs[0], key, tmp_path / "encrypted")
    _, info = build_model_artifact(enc.path, tmp_path / "artifact" / "model.zip")
    return render_model(info.name, info.version, BUCKET, info), tmp_path / "artifact" / "model.zip", key


def start(core: Core, recipe: dict[str, Any], model: tuple[dict[str, Any], Path, bytes], frames: Path) -> Any:
    core.install(model[0], [model[1]])
    core.install(recipe, [], fast_config(frames))
    core.simulate_install(recipe)
    return core.start(recipe)


def test_the_key_comes_from_the_secret_manager_and_the_clear_model_stays_in_memory(
        core: Core, encrypted: tuple[dict[str, Any], Path, bytes], demo_media: tuple[Path, Path],
        demo_pkgs: tuple[Path, Path], local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    local_settings({**trusting_operator(tmp_path_factory.getbasetemp()),
                    "trust": {"decryption": {"greengrass_secret": ARN}}})
    recipe = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model="blazeface-full-range",
                                               decryption_secrets=(ARN,)))
    grant = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]["aws.greengrass.SecretManager"]
    assert [p["resources"] for p in grant.values()] == [[ARN]], "exactly the one secret, no wildcard"
    assert recipe["ComponentDependencies"]["aws.greengrass.SecretManager"]["DependencyType"] == "HARD"
    core.nucleus.secrets.add(ARN, encrypted[2].hex())
    proc = start(core, recipe, encrypted, demo_media[0])
    core.wait_state(NAME, "RUNNING", proc)
    n = core.nucleus
    results = n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "results from the decrypted model")
    assert results
    asked = n.requests("GetSecretValue", NAME)
    assert asked and {r.secret_id for r in asked} == {ARN}, "asked at the model load (thread tuning loads it again)"
    status = core.command(NAME, {"id": "s1", "command": "status"})["result"]
    assert status["model"]["name"] == "blazeface-full-range" and status["running"] is True
    clear = hashlib.sha256(next(demo_pkgs[0].glob("*.onnx")).read_bytes()).hexdigest()
    leaked = [p for p in core.root.rglob("*") if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == clear]
    assert not leaked, f"the clear model was written on the device: {leaked}"
    assert encrypted[2].hex() not in core.log(NAME), "the key is never logged"
    assert core.stop_all() == [0]


def test_without_the_grant_the_component_errors_with_the_fix(
        core: Core, encrypted: tuple[dict[str, Any], Path, bytes], demo_media: tuple[Path, Path],
        local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    local_settings({**trusting_operator(tmp_path_factory.getbasetemp()),
                    "trust": {"decryption": {"greengrass_secret": ARN}}})
    recipe = render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model="blazeface-full-range"))
    core.nucleus.secrets.add(ARN, encrypted[2])
    proc = start(core, recipe, encrypted, demo_media[0])
    core.wait_state(NAME, "ERRORED", proc)
    assert proc.wait(30) != 0, "the nucleus restarts it (and the deployment that brought it fails)"
    log = core.log(NAME)
    assert "the nucleus refused secret " + ARN in log and "--decryption-secret ARN" in log, log[-2000:]


@pytest.mark.parametrize("arn", ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:*",
                                 "edgeinfer/model-key", "arn:aws:s3:::bucket/key"])
def test_render_refuses_what_is_not_one_secret(arn: str) -> None:
    with pytest.raises(RecipeError, match="is not a Secrets Manager secret ARN"):
        render_inference(InferenceOptions(version=VERSION, decryption_secrets=(arn,)))
