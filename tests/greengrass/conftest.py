"""Greengrass fixtures: rendered recipes, the demo model as a model-component artifact, a fake core."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.cloud.aws.clients import AwsClients
from edgeinfer.greengrass.artifacts import build_model_artifact
from edgeinfer.greengrass.recipes import InferenceOptions, ModelPackageInfo, render_inference, render_model
from tests.conftest import LocalSettings, trusting_operator

from .fake_nucleus import FakeNucleus
from .fakes.greengrassv2 import FakeGreengrassV2
from .harness import THING, Core, short_socket_dir

VERSION = "0.1.0"
BUCKET = "edgeinfer-test-artifacts"
REGION = "eu-west-1"



@pytest.fixture(autouse=True)
def _operator_allows_the_test_folders(local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    local_settings(trusting_operator(tmp_path_factory.getbasetemp()))

@pytest.fixture(scope="session")
def model_artifact(demo_pkgs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[Path, ModelPackageInfo]:
    """The real BlazeFace ONNX package as the ZIP a model component ships."""
    out = tmp_path_factory.mktemp("model-artifact") / "model.zip"
    _, info = build_model_artifact(demo_pkgs[0], out)
    return out, info


@pytest.fixture(scope="session")
def model_recipe(model_artifact: tuple[Path, ModelPackageInfo]) -> dict[str, Any]:
    _, info = model_artifact
    return render_model(info.name, info.version, BUCKET, info)


@pytest.fixture(scope="session")
def inference_recipe(model_artifact: tuple[Path, ModelPackageInfo]) -> dict[str, Any]:
    return render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model_artifact[1].name))


@pytest.fixture
def nucleus() -> Iterator[FakeNucleus]:
    """A fake nucleus alone (no component processes): for tests of one IPC part against it."""
    n = FakeNucleus(str(short_socket_dir() / "ipc.socket"), THING)
    n.start()
    yield n
    n.stop()
    shutil.rmtree(Path(n.path).parent, ignore_errors=True)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    c = Core.create(tmp_path / "greengrass")
    yield c
    c.stop_all()


def fast_config(frames: Path, **telemetry: Any) -> dict[str, Any]:
    """A deployment's configuration merge for tests: looping sample frames, telemetry without waiting."""
    return {"source": {"uri": str(frames), "loop": True, "fps": 15},
            "telemetry": {"mode": "results", "window_s": 1.0, "health_interval_s": 2.0,
                          "retry": {"initial_s": 0.05, "max_s": 0.5}, **telemetry},
            "model": {"warmup_runs": 1}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """moto for S3, IoT, STS and the SageMaker registry; the in-memory Greengrass v2 control plane."""
    import boto3
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3, iot, sts = session.client("s3"), session.client("iot"), session.client("sts")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        gg = FakeGreengrassV2(s3, iot, REGION, sts.get_caller_identity()["Account"])
        yield AwsClients(s3=s3, sagemaker=session.client("sagemaker"), iot=iot, sts=sts, greengrass=gg, region=REGION)


def add_core_device(aws: AwsClients, thing: str, group: str | None = None) -> None:
    """A provisioned Greengrass core: an IoT thing (in a thing group) that the control plane knows."""
    aws.iot.create_thing(thingName=thing)
    arns = []
    if group is not None:
        try:
            arn = aws.iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
        except aws.iot.exceptions.ResourceNotFoundException:
            arn = aws.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
        aws.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        arns.append(arn)
    aws.greengrass.register_core_device(thing, arns)  # type: ignore[attr-defined]
