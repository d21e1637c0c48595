"""Failures half-way and lies inside a registry package, against moto: the error names what was created and
left behind; a model file that is not the one registered is caught even when its tarball checks out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count

from edgeinfer.cloud.aws import registry
from edgeinfer.cloud.aws.archives import make_tarball
from edgeinfer.cloud.aws.clients import AwsClients
from edgeinfer.cloud.aws.errors import ArtifactError, AwsError
from edgeinfer.cloud.aws.ledger import Ledger
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.core.modelpkg import load_package, sha256_file

from .conftest import BUCKET, REGION

GROUP = "faces"
#: may upload artifacts and manage the group, but not create model packages
UPLOAD_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "s3:*", "sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackageGroup"]}]}


def objects(aws: AwsClients) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_succeeds_then_create_model_package_is_refused(aws: AwsClients, demo_pkgs) -> None:
    """moto enforces IAM here: the S3 upload and the group succeed, CreateModelPackage is denied."""
    seen: dict[str, object] = {}

    @set_initial_no_auth_action_count(3)  # the three IAM calls below run unauthenticated, everything after is checked
    def as_upload_only_user() -> None:
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="publisher")
        iam.put_user_policy(UserName="publisher", PolicyName="upload-only", PolicyDocument=json.dumps(UPLOAD_ONLY))
        key = iam.create_access_key(UserName="publisher")["AccessKey"]
        session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                region_name=REGION)
        limited = AwsClients(s3=session.client("s3"), sagemaker=session.client("sagemaker"), iot=aws.iot,
                             sts=aws.sts, greengrass=aws.greengrass, region=REGION)
        ledger = Ledger()
        with pytest.raises(AwsError) as caught:
            registry.register(limited, demo_pkgs[0], GROUP, BUCKET, ledger=ledger)
        seen.update(error=str(caught.value), created=list(ledger.created))

    as_upload_only_user()
    (key,) = objects(aws)
    msg = str(seen["error"])
    assert "register: AWS answered" in msg and "not authorized to perform: sagemaker:CreateModelPackage" in msg
    assert f"already created (kept, safe to reuse): artifact s3://{BUCKET}/{key}, model package group {GROUP}" in msg
    assert seen["created"] == [f"artifact s3://{BUCKET}/{key}", f"model package group {GROUP}"]
    assert " -> check the names, region and your permissions" in msg and "\n" not in msg
    # with the permission, the same command finishes and reuses what the failed one left behind
    ledger = Ledger()
    entry = registry.register(aws, demo_pkgs[0], GROUP, BUCKET, ledger=ledger)
    assert entry.version == 1 and objects(aws) == [key]
    assert ledger.reused == [f"artifact s3://{BUCKET}/{key}"] and ledger.created == [f"model package {entry.arn}"]


def _swapped_model(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> tuple[Path, str]:
    """A sound package (the TFLite one) where the registry recorded the ONNX model's sha256."""
    return demo_pkgs[1], load_package(demo_pkgs[0]).model_sha256


def _changed_model_file(demo_pkgs: tuple[Path, Path], tmp_path: Path) -> tuple[Path, str]:
    """The registered package, one byte of its model file changed after its manifest was written."""
    pkg = shutil.copytree(demo_pkgs[0], tmp_path / "changed")
    recorded = load_package(pkg).model_sha256
    model = bytearray((pkg / "model.onnx").read_bytes())
    model[-1] ^= 0xFF  # same size, different bytes
    (pkg / "model.onnx").write_bytes(bytes(model))
    return pkg, recorded


@pytest.mark.parametrize(("make", "expected"), [
    (_swapped_model, r"the model file in s3://\S+ has sha256 \w+…, the registry says \w+…; nothing was created "
                     r"-> register the model again and reject this version"),
    (_changed_model_file, r"the package in s3://\S+ fails verification: sha256 mismatch for model\.onnx.*; nothing "
                          r"was created -> register a good package"),
], ids=["other-model-than-registered", "model-file-disagrees-with-its-manifest"])
def test_model_hash_mismatch_inside_a_registry_package(aws: AwsClients, demo_pkgs, tmp_path: Path, make,
                                                       expected: str) -> None:
    """The tarball matches the registry's edgeinfer:sha256 (so the tarball check passes); the model inside
    does not match: publish stops before uploading or creating anything."""
    folder, model_sha256 = make(demo_pkgs, tmp_path)
    tarball = make_tarball(folder, tmp_path / "model.tar.gz")
    key = f"byo/{sha256_file(tarball)}/model.tar.gz"
    aws.s3.upload_file(str(tarball), BUCKET, key)
    aws.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"ModelDataUrl": f"s3://{BUCKET}/{key}"}],
                                "SupportedContentTypes": ["image/jpeg"], "SupportedResponseMIMETypes": ["text/json"]},
        CustomerMetadataProperties={"edgeinfer:sha256": sha256_file(tarball), "edgeinfer:model_sha256": model_sha256,
                                    "edgeinfer:task": "detection"})
    with pytest.raises(ArtifactError, match=expected):
        publish(aws, GROUP, BUCKET)
    assert objects(aws) == [key] and aws.greengrass.components == {}
