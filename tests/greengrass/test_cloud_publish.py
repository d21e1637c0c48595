"""register -> approve -> publish against moto (S3, STS, SageMaker registry) and the Greengrass v2 fake."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from edgeinfer import __version__
from edgeinfer.cloud.aws import registry
from edgeinfer.cloud.aws.errors import ArtifactError, ComponentError, RegistryError
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.cloud.aws.s3store import parse_s3_uri
from edgeinfer.greengrass.bundle import MANIFEST_NAME, BundleManifest
from edgeinfer.greengrass.errors import RecipeError
from edgeinfer.greengrass.recipes.platforms import PLATFORMS, runtime_artifact_name

from .conftest import BUCKET

GROUP = "faces"


def runtime_dir(tmp_path: Path) -> Path:
    """Stand-in runtime bundles: a manifest and no wheels (the control plane only needs them in S3; the real
    bundle and its Install step are tested in test_runtime_bundle.py)."""
    d = tmp_path / "runtime"
    d.mkdir(parents=True)
    for p in PLATFORMS:
        manifest = BundleManifest(platform=p.key, python="3.11", glibc="2.28", extras=p.extras.split(","),
                                  edgeinfer_version=__version__, wheels=[])
        with zipfile.ZipFile(d / runtime_artifact_name(p), "w") as zf:
            zf.writestr(zipfile.ZipInfo(MANIFEST_NAME, (1980, 1, 1, 0, 0, 0)), manifest.to_json())
    return d


def objects(aws) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_register_uploads_content_addressed_and_records_metadata(aws, demo_pkgs) -> None:
    first = registry.register(aws, demo_pkgs[0], GROUP, BUCKET)
    assert first.version == 1 and first.status == "PendingManualApproval"
    bucket, key = parse_s3_uri(first.data_url)
    assert bucket == BUCKET and key == f"edgeinfer/registry/{GROUP}/{first.meta('sha256')}/model.tar.gz"
    assert first.meta("format") == "onnx" and first.meta("task") == "detection"
    again = registry.register(aws, demo_pkgs[0], GROUP, BUCKET)  # same bytes: same key, a new registry version
    assert again.version == 2 and again.data_url == first.data_url
    assert objects(aws) == [key]


def test_publish_needs_an_approved_version_and_creates_nothing_without(aws, demo_pkgs, tmp_path) -> None:
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET)
    with pytest.raises(RegistryError, match=r"no Approved version \(v1 PendingManualApproval\)"):
        publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))
    with pytest.raises(RegistryError, match="version 1 is PendingManualApproval, not Approved"):
        publish(aws, GROUP, BUCKET, version=1)
    assert aws.greengrass.components == {}
    assert all(k.startswith("edgeinfer/registry/") for k in objects(aws))


def test_publish_creates_model_and_inference_components_once(aws, demo_pkgs, tmp_path) -> None:
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET)
    registry.approve(aws, GROUP, 1)
    out = publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))
    assert (out.model_component, out.model_version) == (f"com.edgeinfer.Model.{GROUP}", "1.0.0")
    comps = {(c["name"], c["version"]): c for c in aws.greengrass.components.values()}
    model = comps[("com.edgeinfer.Model.faces", "1.0.0")]
    assert model["status"]["componentState"] == "DEPLOYABLE"
    art = model["recipe"]["Manifests"][0]["Artifacts"][0]
    assert art["Permission"]["Read"] == "ALL" and art["Unarchive"] == "ZIP" and art["Algorithm"] == "SHA-256"
    zbucket, zkey = parse_s3_uri(art["URI"])
    body = aws.s3.get_object(Bucket=zbucket, Key=zkey)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        manifest = yaml.safe_load(zf.read("manifest.yaml"))
    assert manifest["version"] == "1.0.0" and manifest["source"]["registry_version"] == "1"
    inference = comps[("com.edgeinfer.Inference", out.inference_version)]
    assert inference["recipe"]["ComponentDependencies"]["com.edgeinfer.Model.faces"]["VersionRequirement"] == ">=1.0.0"
    assert {m["Name"] for m in inference["recipe"]["Manifests"]} == {p.key for p in PLATFORMS}
    created = list(out.ledger.created)
    assert any("com.edgeinfer.Model.faces 1.0.0" in c for c in created)
    # publishing the same version again creates nothing and uploads nothing
    before = objects(aws)
    again = publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path / "again"))
    assert again.ledger.created == [] and objects(aws) == before
    # a second registry version becomes model component 2.0.0; the inference version accepts it as is
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved")
    v2 = publish(aws, GROUP, BUCKET)
    assert v2.model_version == "2.0.0" and ("component com.edgeinfer.Inference " + out.inference_version) \
        in v2.ledger.reused


def test_hash_mismatch_missing_artifact_and_missing_runtime(aws, demo_pkgs, tmp_path) -> None:
    entry = registry.register(aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved")
    bucket, key = parse_s3_uri(entry.data_url)
    original = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    aws.s3.put_object(Bucket=bucket, Key=key, Body=original[:-10] + b"0123456789")  # replaced behind our back
    with pytest.raises(ArtifactError, match=r"has sha256 .* the registry entry v1 says"):
        publish(aws, GROUP, BUCKET)
    aws.s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ArtifactError, match="does not exist"):
        publish(aws, GROUP, BUCKET)
    assert aws.greengrass.components == {}
    aws.s3.put_object(Bucket=bucket, Key=key, Body=original)
    # no runtime wheelhouse uploaded: the model component is created, the error says so
    with pytest.raises(ComponentError, match=r"artifact\(s\) not in S3.*already created.*com.edgeinfer.Model.faces"):
        publish(aws, GROUP, BUCKET)


def test_registry_entry_without_artifact(aws) -> None:
    aws.sagemaker.create_model_package_group(ModelPackageGroupName="bare")
    aws.sagemaker.create_model_package(ModelPackageGroupName="bare", ModelApprovalStatus="Approved",
                                       CustomerMetadataProperties={"edgeinfer:task": "detection"})
    with pytest.raises(RegistryError, match="has no artifact"):
        publish(aws, "bare", BUCKET)
    with pytest.raises(RegistryError, match="'nothing' does not exist"):
        publish(aws, "nothing", BUCKET)


def test_bare_model_file_in_registry_is_repackaged_with_a_manifest(aws, demo_pkgs, tmp_path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(demo_pkgs[0] / "model.onnx", arcname="model.onnx")
    aws.s3.put_object(Bucket=BUCKET, Key="byo/model.tar.gz", Body=buf.getvalue())
    aws.sagemaker.create_model_package_group(ModelPackageGroupName="byo")
    aws.sagemaker.create_model_package(
        ModelPackageGroupName="byo", ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{"ModelDataUrl": f"s3://{BUCKET}/byo/model.tar.gz"}],
                                "SupportedContentTypes": ["image/jpeg"], "SupportedResponseMIMETypes": ["text/json"]},
        CustomerMetadataProperties={"edgeinfer:task": "classification"})
    out = publish(aws, "byo", BUCKET, inference=False)
    assert out.model_version == "1.0.0" and out.inference_component is None


def test_s3_key_with_different_bytes_is_refused(aws, demo_pkgs, model_artifact) -> None:
    from edgeinfer.cloud.aws.s3store import put_immutable

    key = "edgeinfer/models/x/abc/model.zip"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"someone else's bytes")
    with pytest.raises(ArtifactError, match=r"already holds different bytes .* publish under a new version"):
        put_immutable(aws.s3, BUCKET, key, model_artifact[0])
    assert aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"someone else's bytes"
    with pytest.raises(ArtifactError, match="bucket no-such-bucket-here does not exist"):
        put_immutable(aws.s3, "no-such-bucket-here", key, model_artifact[0])


def test_invalid_recipe_never_reaches_greengrass(aws) -> None:
    from edgeinfer.cloud.aws.components import create_component
    from edgeinfer.cloud.aws.ledger import Ledger

    recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.edgeinfer.Model.x", "ComponentVersion": "1.0",
              "ComponentPublisher": "me", "Manifests": [{"Lifecyle": {"run": "echo"}}]}
    with pytest.raises(RecipeError, match=r"not a semantic version.*unknown key 'Lifecyle'"):
        create_component(aws, recipe, Ledger(), "123456789012")
    assert not [c for c in aws.greengrass.calls if c[0] == "CreateComponentVersion"]
