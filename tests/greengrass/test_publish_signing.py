"""Signing at publish time: `edgeinfer aws register/publish --sign-key | --kms-key` against moto (S3, SageMaker,
KMS) and the Greengrass v2 fake; what they publish is checked by the installed `edgeinfer model verify --trust`.

moto's KMS signs ECC_NIST_P256 keys with ECDSA_SHA_256 over RAW messages, as KMS does; its public key (DER
SubjectPublicKeyInfo, as `aws kms get-public-key` returns it) is exported as PEM by `edgeinfer aws export-key`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeinfer.cli.aws import build_aws_app
from edgeinfer.cloud.aws import registry
from edgeinfer.cloud.aws.clients import AwsClients
from edgeinfer.cloud.aws.errors import AwsError
from edgeinfer.cloud.aws.kms import KmsSigner
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.cloud.aws.s3store import parse_s3_uri
from edgeinfer.core.modelpkg.signing import SIGNATURE_NAME, LocalSigner, generate_keypair, load_private_key

from ..conftest import run_cli
from .conftest import BUCKET, REGION

GROUP = "faces"
runner = CliRunner()


@pytest.fixture
def kms_aws(aws: AwsClients) -> AwsClients:
    """The moto clients, with moto's KMS too."""
    import boto3

    return dataclasses.replace(aws, kms=boto3.client("kms", region_name=REGION))


def kms_key(clients: AwsClients, spec: str = "ECC_NIST_P256") -> str:
    return clients.kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]


def s3_bytes(clients: AwsClients, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    return clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def published_package(clients: AwsClients, version: str, out: Path) -> Path:
    """The model component's ZIP, as a device gets it (Greengrass unarchives it into a folder)."""
    comp = next(c for c in clients.greengrass.components.values()
                if c["name"] == f"com.edgeinfer.Model.{GROUP}" and c["version"] == version)
    uri = comp["recipe"]["Manifests"][0]["Artifacts"][0]["URI"]
    with zipfile.ZipFile(io.BytesIO(s3_bytes(clients, uri))) as zf:
        zf.extractall(out)
    return out


def verify(pkg: Path, *trusted: Path):
    return run_cli("model", "verify", str(pkg), *(a for t in trusted for a in ("--trust", str(t))))


def test_key_file_signs_at_register_and_at_publish(kms_aws: AwsClients, demo_pkgs, tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "keys")
    signer = LocalSigner(load_private_key(pair.private))
    entry = registry.register(kms_aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved", signer=signer)
    assert entry.meta("signed_by") == pair.key_id
    assert not (demo_pkgs[0] / SIGNATURE_NAME).exists()  # a copy was signed, not the caller's package
    with tarfile.open(fileobj=io.BytesIO(s3_bytes(kms_aws, entry.data_url or ""))) as tf:
        tf.extractall(tmp_path / "registered", filter="data")
    r = verify(tmp_path / "registered", pair.public)
    assert r.returncode == 0 and "ok   signature" in r.stdout, r.stdout + r.stderr

    out = publish(kms_aws, GROUP, BUCKET, inference=False, signer=signer)
    assert out.signed_by == pair.key_id and out.model_version == "1.0.0"
    pkg = published_package(kms_aws, "1.0.0", tmp_path / "published")
    doc = json.loads((pkg / SIGNATURE_NAME).read_text())
    assert doc["algorithm"] == "ed25519" and doc["version"] == "1.0.0"  # over the version devices compare
    r = verify(pkg, pair.public)
    assert r.returncode == 0 and "ok   signature" in r.stdout, r.stdout + r.stderr


def test_publish_without_a_key_drops_the_stale_registered_signature(kms_aws: AwsClients, demo_pkgs,
                                                                     tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "keys")
    registry.register(kms_aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved",
                      signer=LocalSigner(load_private_key(pair.private)))
    registry.register(kms_aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved",
                      signer=LocalSigner(load_private_key(pair.private)))
    out = publish(kms_aws, GROUP, BUCKET, inference=False)  # v2 -> 2.0.0: the registered signature said 1.0.0
    assert out.signed_by is None and out.model_version == "2.0.0"
    pkg = published_package(kms_aws, "2.0.0", tmp_path / "published")
    assert not (pkg / SIGNATURE_NAME).exists()
    r = verify(pkg, pair.public)
    assert r.returncode == 2 and "package is unsigned" in r.stderr, r.stdout + r.stderr


def test_kms_key_signs_via_the_cli_and_its_exported_key_verifies(kms_aws: AwsClients, demo_pkgs,
                                                                  tmp_path: Path) -> None:
    app = build_aws_app(lambda region, profile: kms_aws)
    arn = kms_key(kms_aws)
    pem = tmp_path / "kms.pub"
    res = runner.invoke(app, ["export-key", "--kms-key", arn, "--out", str(pem)])
    assert res.exit_code == 0, res.output
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    der = kms_aws.kms.get_public_key(KeyId=arn)["PublicKey"]
    import hashlib

    kid = hashlib.sha256(der).hexdigest()  # the key id is the sha256 of what `aws kms get-public-key` returns
    assert f"key id {kid}" in res.output.replace("\n", "")

    res = runner.invoke(app, ["register", str(demo_pkgs[0]), "--group", GROUP, "--bucket", BUCKET,
                              "--approval", "Approved", "--kms-key", arn])
    assert res.exit_code == 0 and f"signed by key {kid[:16]}" in res.output, res.output
    res = runner.invoke(app, ["publish", "--group", GROUP, "--bucket", BUCKET, "--model-only", "--kms-key", arn])
    assert res.exit_code == 0 and f"(signed by key {kid[:16]}" in res.output, res.output
    pkg = published_package(kms_aws, "1.0.0", tmp_path / "published")
    doc = json.loads((pkg / SIGNATURE_NAME).read_text())
    assert doc["algorithm"] == "ecdsa-p256-sha256" and doc["key_id"] == kid
    r = verify(pkg, pem)
    assert r.returncode == 0 and "ok   signature" in r.stdout and "ok   warm-up" in r.stdout, r.stdout + r.stderr
    other = generate_keypair(tmp_path / "other", algorithm="ecdsa-p256")
    r = verify(pkg, other.public)
    assert r.returncode == 2 and "which is not trusted" in r.stderr, r.stdout + r.stderr

    res = runner.invoke(app, ["publish", "--group", GROUP, "--bucket", BUCKET, "--kms-key", arn,
                              "--sign-key", str(other.private)])
    assert res.exit_code != 0 and "not both" in res.output


def test_kms_keys_that_cannot_sign_p256_are_refused_up_front(kms_aws: AwsClients) -> None:
    with pytest.raises(AwsError, match="is RSA_2048 for SIGN_VERIFY, not ECC_NIST_P256"):
        KmsSigner(kms_aws.kms, kms_key(kms_aws, "RSA_2048"))
    enc = kms_aws.kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    with pytest.raises(AwsError, match="is SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT, not ECC_NIST_P256"):
        KmsSigner(kms_aws.kms, enc)
    with pytest.raises(AwsError, match="KMS GetPublicKey with key alias/none failed"):
        KmsSigner(kms_aws.kms, "alias/none")
    with pytest.raises(AwsError, match="no KMS client"):
        KmsSigner(None, "x")


def test_model_sign_with_kms_for_the_azure_path(kms_aws: AwsClients, demo_pkgs, tmp_path: Path) -> None:
    """IoT Edge has no publish step of ours: the package is signed (here with KMS) before it is uploaded."""
    import shutil

    from edgeinfer.cli import app

    pkg = Path(shutil.copytree(demo_pkgs[0], tmp_path / "pkg"))
    arn = kms_key(kms_aws)
    pem = tmp_path / "kms.pub"
    assert runner.invoke(build_aws_app(lambda r, p: kms_aws), ["export-key", "--kms-key", arn, "--out",
                                                                str(pem)]).exit_code == 0
    res = runner.invoke(app, ["model", "sign", str(pkg), "--kms-key", arn, "--region", REGION])
    assert res.exit_code == 0 and "signed:" in res.output, res.output
    r = verify(pkg, pem)
    assert r.returncode == 0 and "ok   signature" in r.stdout, r.stdout + r.stderr
    res = runner.invoke(app, ["model", "sign", str(pkg)])
    assert res.exit_code == 2 and "--key FILE or --kms-key KEY" in res.output
