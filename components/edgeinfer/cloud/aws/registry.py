"""The SageMaker Model Registry as edgeinfer uses it (boto3's ``sagemaker`` client).

A registered version = one model package in a group: ``ModelDataUrl`` -> an immutable,
content-addressed ``model.tar.gz`` in S3, an approval status, and ``CustomerMetadataProperties``
``edgeinfer:sha256`` (the tarball), ``edgeinfer:model_sha256`` (the model file), ``edgeinfer:format``,
``edgeinfer:task``, ``edgeinfer:name``, ``edgeinfer:version``. Packages registered by other tools
work too when they carry at least ``edgeinfer:task`` (and ideally ``edgeinfer:sha256``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ...core.modelpkg import load_package, sha256_file
from ...core.modelpkg.signing import Signer, sign_package
from ...core.optimize.lineage import check_publishable
from .archives import make_tarball
from .clients import AwsClients
from .errors import RegistryError, is_not_found
from .ledger import Ledger, reported
from .s3store import put_immutable

log = logging.getLogger(__name__)
META = "edgeinfer:"
APPROVED = "Approved"
STATUSES = ("Approved", "Rejected", "PendingManualApproval")


@dataclass(frozen=True, slots=True)
class RegistryPackage:
    arn: str
    group: str
    version: int
    status: str
    data_url: str | None
    metadata: dict[str, str]

    def meta(self, key: str) -> str | None:
        return self.metadata.get(META + key)


def registry_key(group: str, sha256: str) -> str:
    return f"edgeinfer/registry/{group}/{sha256}/model.tar.gz"


def ensure_group(sm: Any, group: str, ledger: Ledger) -> None:
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
        return
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    sm.create_model_package_group(ModelPackageGroupName=group,
                                  ModelPackageGroupDescription="edgeinfer model packages")
    ledger.add(f"model package group {group}")


def register(clients: AwsClients, package: Path, group: str, bucket: str, approval: str = "PendingManualApproval",
             description: str | None = None, image: str | None = None, ledger: Ledger | None = None,
             signer: Signer | None = None, force: bool = False) -> RegistryPackage:
    """Verify the package, upload it as model.tar.gz (content-addressed) and create a registry version. With
    ``signer`` a copy of the package is signed first (the given folder or zip is not changed). A package whose
    optimize lineage says its agreement report rejected it is refused unless ``force``."""
    if approval not in STATUSES:
        raise RegistryError(f"unknown approval status {approval!r}", f"use one of {', '.join(STATUSES)}")
    ledger = ledger or Ledger()
    pkg = load_package(package, verify=True)  # never register bytes that disagree with their manifest
    m = pkg.manifest
    lineage = check_publishable(m, force)
    with tempfile.TemporaryDirectory(prefix="edgeinfer-register-") as tmp, reported(ledger, "register"):
        root = pkg.root
        if signer is not None:
            root = Path(tmp) / "package"
            shutil.copytree(pkg.root, root)
            sign_package(root, signer)
        tarball = make_tarball(root, Path(tmp) / "model.tar.gz")
        stored = put_immutable(clients.s3, bucket, registry_key(group, sha256_file(tarball)), tarball,
                               "application/gzip")
        (ledger.add if stored.created else ledger.reuse)(f"artifact {stored.uri}")
        ensure_group(clients.sagemaker, group, ledger)
        container: dict[str, Any] = {"ModelDataUrl": stored.uri, "Framework": m.format.upper()}
        if image:
            container["Image"] = image
        metadata = {"sha256": stored.sha256, "model_sha256": pkg.model_sha256, "format": m.format, "task": m.task,
                    "name": m.name, "version": m.version,
                    **({"signed_by": signer.key_id} if signer is not None else {}),
                    **({"optimized_from": lineage.from_package, "optimize_method": lineage.method,
                        "optimize_verdict": lineage.verdict} if lineage is not None else {})}
        arn = clients.sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=approval,
            ModelPackageDescription=description or f"{m.name} {m.version} ({m.task}, {m.format}) via edgeinfer",
            InferenceSpecification={"Containers": [container], "SupportedContentTypes": ["image/jpeg"],
                                    "SupportedResponseMIMETypes": ["application/json"]},
            CustomerMetadataProperties={META + k: v for k, v in metadata.items()})["ModelPackageArn"]
        ledger.add(f"model package {arn}")
    return describe(clients.sagemaker, arn)


def describe(sm: Any, arn: str) -> RegistryPackage:
    d = sm.describe_model_package(ModelPackageName=arn)
    containers = (d.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return RegistryPackage(arn=d["ModelPackageArn"], group=d.get("ModelPackageGroupName", ""),
                           version=int(d.get("ModelPackageVersion") or 0), status=d.get("ModelApprovalStatus", ""),
                           data_url=containers[0].get("ModelDataUrl") or d.get("SourceUri"),
                           metadata=dict(d.get("CustomerMetadataProperties") or {}))


def _versions(sm: Any, group: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    while True:
        page = sm.list_model_packages(**kwargs)
        items.extend(page.get("ModelPackageSummaryList", []))
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def find(clients: AwsClients, group: str, version: int | None = None) -> RegistryPackage:
    """The given version, or the newest Approved one; RegistryError says why none is usable."""
    sm = clients.sagemaker
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if is_not_found(exc):
            raise RegistryError(f"model package group {group!r} does not exist in {clients.region}",
                                "register a model first: edgeinfer aws register PACKAGE --group NAME") from exc
        raise
    summaries = _versions(sm, group)
    if version is not None:
        match = next((s for s in summaries if int(s.get("ModelPackageVersion") or 0) == version), None)
        if match is None:
            have = sorted(int(s.get("ModelPackageVersion") or 0) for s in summaries)
            raise RegistryError(f"{group} has no version {version} (versions: {have or 'none'})",
                                "pick an existing version")
        if match.get("ModelApprovalStatus") != APPROVED:
            raise RegistryError(f"{group} version {version} is {match.get('ModelApprovalStatus')}, not Approved",
                                f"approve it first: edgeinfer aws approve --group {group} --version {version}")
        return describe(sm, match["ModelPackageArn"])
    approved = [s for s in summaries if s.get("ModelApprovalStatus") == APPROVED]
    if not approved:
        states = ", ".join(f"v{s.get('ModelPackageVersion')} {s.get('ModelApprovalStatus')}" for s in summaries)
        raise RegistryError(f"{group} has no Approved version ({states or 'no versions at all'})",
                            f"approve one: edgeinfer aws approve --group {group} --version N")
    newest = max(approved, key=lambda s: int(s.get("ModelPackageVersion") or 0))
    return describe(sm, newest["ModelPackageArn"])


def approve(clients: AwsClients, group: str, version: int, status: str = APPROVED) -> RegistryPackage:
    if status not in STATUSES:
        raise RegistryError(f"unknown approval status {status!r}", f"use one of {', '.join(STATUSES)}")
    summaries = _versions(clients.sagemaker, group)
    match = next((s for s in summaries if int(s.get("ModelPackageVersion") or 0) == version), None)
    if match is None:
        raise RegistryError(f"{group} has no version {version}", "list versions: aws sagemaker list-model-packages "
                            f"--model-package-group-name {group}")
    current = describe(clients.sagemaker, match["ModelPackageArn"])
    # the metadata is re-sent unchanged: the API merges it, some implementations (moto) replace it
    extra = {"CustomerMetadataProperties": current.metadata} if current.metadata else {}
    clients.sagemaker.update_model_package(ModelPackageArn=current.arn, ModelApprovalStatus=status, **extra)
    return describe(clients.sagemaker, current.arn)
