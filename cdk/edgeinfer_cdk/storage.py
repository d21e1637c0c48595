"""The fleet's S3 buckets: model/runtime artifacts, archived telemetry, and their access logs.

Every bucket is encrypted (SSE-S3), blocks public access, refuses plain HTTP and is retained when
the stack is deleted (devices verify artifacts by digest; telemetry is the fleet's record).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .athena import RESULTS_EXPIRE_DAYS, RESULTS_PREFIX
from .config import FleetConfig
from .nag import acknowledge


def secure_bucket(scope: Construct, cid: str, *, logs: s3.IBucket | None, versioned: bool = False,
                  lifecycle_rules: list[s3.LifecycleRule] | None = None) -> s3.Bucket:
    return s3.Bucket(
        scope, cid, encryption=s3.BucketEncryption.S3_MANAGED, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True, versioned=versioned, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=logs, server_access_logs_prefix=f"{cid.lower()}/" if logs else None,
        lifecycle_rules=lifecycle_rules, removal_policy=RemovalPolicy.RETAIN)


class FleetStorage(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig) -> None:
        super().__init__(scope, cid)
        self.access_logs = secure_bucket(self, "AccessLogs", logs=None, lifecycle_rules=[
            s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))])
        acknowledge(self.access_logs, "AwsSolutions-S1",
                    "this bucket is the access-log destination of the other buckets; logging it into itself "
                    "would log every log delivery")
        # Versioned: an overwritten or deleted artifact can be restored (keys are immutable by design, this
        # guards against mistakes outside the tooling). Old versions expire; current ones never do.
        self.artifacts = secure_bucket(self, "Artifacts", logs=self.access_logs, versioned=True, lifecycle_rules=[
            s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(90),
                             abort_incomplete_multipart_upload_after=Duration.days(7))])
        self.telemetry = secure_bucket(self, "Telemetry", logs=self.access_logs, lifecycle_rules=[
            s3.LifecycleRule(id="expire-telemetry", expiration=Duration.days(cfg.telemetry_expire_days),
                             abort_incomplete_multipart_upload_after=Duration.days(7)),
            s3.LifecycleRule(id="expire-athena-results", prefix=RESULTS_PREFIX,
                             expiration=Duration.days(RESULTS_EXPIRE_DAYS))])
