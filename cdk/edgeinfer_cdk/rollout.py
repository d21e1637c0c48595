"""Model rollout: SageMaker model package approved -> EventBridge -> Lambda -> publish + the rollout plan's
first ring; an EventBridge schedule -> the same Lambda -> advance the rollout in flight.

The Lambda runs the project's own ``edgeinfer.cloud.aws.publish`` and rollout engine (``cloud/rollout`` with
``cloud/aws/rollout.py``, exactly what ``edgeinfer aws rollout start|advance`` run; bundled at synth time, see
bundling.py) with exactly the permissions those calls need: read this group's registry, write this model's
component artifacts, create this model's and the inference component's versions, deploy to the rings' thing
groups, read each ring's IoT job and the devices' rollback metric, cancel, revert and tag an aborted ring's
deployment. One invocation at a time (reserved concurrency 1), so an approval and an advance never race; a
failed one is retried once, then lands in the failure queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from edgeinfer.cloud.aws.rollout import ABORTED_TAG, MODEL_NAME_TAG, PREVIOUS_TAG, RING_TAG, ROLLOUT_TAG
from edgeinfer.greengrass import INFERENCE_COMPONENT, model_component_name

from . import s3_layout
from .bundling import HANDLER, rollout_code
from .config import FleetConfig
from .grants import allow
from .nag import acknowledge
from .rollout_lambda.event import APPROVED, DETAIL_TYPE, SOURCE
from .rules import metric_namespace

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
TIMEOUT = Duration.minutes(10)  # download, verify, re-zip and upload a model package; then the first ring
MEMORY_MB = 1024
EPHEMERAL = Size.gibibytes(2)  # /tmp holds the tarball, the unpacked package and the ZIP at once


class ModelRollout(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, artifacts: s3.IBucket, ring_group_arns: list[str],
                 baseline: dict[str, dict[str, Any]]) -> None:
        super().__init__(scope, cid)
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=cfg.model_package_group,
            model_package_group_description=f"edgeinfer fleet {cfg.fleet}: approving a version deploys it")
        # the registry is the fleet's model lineage: kept when the stack goes (and a group holding versions
        # cannot be deleted anyway)
        self.model_package_group.apply_removal_policy(RemovalPolicy.RETAIN)
        self.failures = sqs.Queue(self, "Failures", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                                  retention_period=Duration.days(14))
        acknowledge(self.failures, "AwsSolutions-SQS3",
                    "this queue IS the dead-letter queue: failed rollouts from the Lambda and undeliverable events "
                    "from the EventBridge rule land here")
        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.THREE_MONTHS,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description="edgeinfer rollout: publish approved models and roll them out ring by ring")
        self.function = lambda_.Function(
            self, "Function", runtime=RUNTIME, architecture=ARCHITECTURE, handler=HANDLER,
            code=rollout_code(RUNTIME, ARCHITECTURE), role=self.role, timeout=TIMEOUT, memory_size=MEMORY_MB,
            ephemeral_storage_size=EPHEMERAL, reserved_concurrent_executions=1, log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON, application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            description="edgeinfer: SageMaker approval -> publish + rollout start; schedule -> rollout advance",
            environment={"EDGEINFER_BUCKET": artifacts.bucket_name, "EDGEINFER_MODEL_GROUP": cfg.model_package_group,
                         "EDGEINFER_METRICS_NAMESPACE": metric_namespace(cfg),
                         "EDGEINFER_ROLLOUT": cfg.plan.model_dump_json(),
                         "EDGEINFER_BASELINE": json.dumps(baseline, separators=(",", ":"), sort_keys=True)},
            retry_attempts=1, max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.failures))
        self._grant(cfg, artifacts, ring_group_arns)
        self.rule = events.Rule(self, "ApprovedRule", description=f"{cfg.model_package_group}: version approved",
                                event_pattern=events.EventPattern(
                                    source=[SOURCE], detail_type=[DETAIL_TYPE],
                                    detail={"ModelPackageGroupName": [cfg.model_package_group],
                                            "ModelApprovalStatus": [APPROVED]}))
        self.rule.add_target(targets.LambdaFunction(self.function, retry_attempts=4,
                                                    dead_letter_queue=self.failures))
        every = cfg.plan.advance_every_minutes
        self.schedule = events.Rule(self, "AdvanceSchedule", schedule=events.Schedule.rate(Duration.minutes(every)),
                                    description=f"{cfg.model_package_group}: advance the rollout in flight")
        # the next tick is the retry: an advance that could not be delivered is not sent again
        self.schedule.add_target(targets.LambdaFunction(self.function, retry_attempts=0,
                                                        dead_letter_queue=self.failures))

    def _grant(self, cfg: FleetConfig, artifacts: s3.IBucket, ring_group_arns: list[str]) -> None:
        """Exactly what ``publish`` and the rollout engine call, on this fleet's resources only."""
        stack = Stack.of(self)
        group, role = cfg.model_package_group, self.role
        model = model_component_name(group)

        def arn(service: str, resource: str, name: str, fmt: ArnFormat = ArnFormat.SLASH_RESOURCE_NAME) -> str:
            return stack.format_arn(service=service, resource=resource, resource_name=name, arn_format=fmt)

        def component(name: str) -> str:
            return arn("greengrass", "components", name, ArnFormat.COLON_RESOURCE_NAME)

        allow(role, "Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        # registry.find: the group, its versions (listed, then described)
        allow(role, "ReadRegistryGroup", ["sagemaker:DescribeModelPackageGroup"],
              [self.model_package_group.attr_model_package_group_arn])
        allow(role, "ListRegistryVersions", ["sagemaker:ListModelPackages"], ["*"],
              why="ListModelPackages takes no resource in IAM; it only lists, the versions are read below")
        allow(role, "ReadRegistryVersions", ["sagemaker:DescribeModelPackage"],
              [arn("sagemaker", "model-package", f"{group}/*")],
              why="any version of this fleet's model package group can be the one approved")
        # s3store: HEAD answers 404 (not 403) for a missing key only with ListBucket
        allow(role, "ArtifactKeysExist", ["s3:ListBucket"], [artifacts.bucket_arn])
        allow(role, "ReadArtifacts", ["s3:GetObject"],
              [artifacts.arn_for_objects(p) for p in (s3_layout.registry_objects(group), s3_layout.model_objects(group),
                                                       s3_layout.runtime_objects())],
              why="keys are content-addressed (sha256 in the key), known only at run time; limited to this group's "
                  "registry tarballs, this model's ZIPs and the runtime wheelhouses")
        allow(role, "WriteModelArtifacts", ["s3:PutObject"],
              [artifacts.arn_for_objects(s3_layout.model_objects(group))],
              why="the model ZIP's key holds its sha256, known only after repackaging; only this model's prefix")
        # components.create_component / get_recipe, deploy.latest_version
        allow(role, "ComponentVersions", ["greengrass:CreateComponentVersion", "greengrass:ListComponentVersions"],
              [component(model), component(INFERENCE_COMPONENT)])
        allow(role, "ReadRecipes", ["greengrass:GetComponent"],
              [component(f"{name}:versions:*") for name in (model, INFERENCE_COMPONENT)],
              why="versions are made per registry version; only this model's and the inference component's")
        # deploy.current_deployment / create (each ring; an abort's revert), rollout._find (each ring's deployments),
        # and what CreateDeployment does on the caller's behalf
        deployments = arn("greengrass", "deployments", "*", ArnFormat.COLON_RESOURCE_NAME)
        allow(role, "Deploy", ["greengrass:CreateDeployment", "greengrass:ListDeployments"], ["*"],
              why="neither action takes a resource in IAM (a deployment's id is made by the call); where it can go "
                  "is limited by iot:CreateJob below to the rollout rings' thing groups")
        allow(role, "ReadDeployments", ["greengrass:GetDeployment"], [deployments],
              why="deployment ids are made by Greengrass; reading one reveals only component names and versions")
        # rollout.abort_ring: stop a failing ring's deployment (its IoT job), then record why on it
        allow(role, "AbortRing", ["greengrass:CancelDeployment"], [deployments],
              why="deployment ids are made by Greengrass at run time and CancelDeployment has no condition keys; "
                  "the engine cancels only a ring deployment of its own rollout that it judged failing")
        allow(role, "TagRolloutDeployments", ["greengrass:TagResource"], [deployments],
              conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [
                  ROLLOUT_TAG, RING_TAG, PREVIOUS_TAG, MODEL_NAME_TAG, ABORTED_TAG]}},
              why="deployment ids are made by Greengrass at run time; the condition allows the rollout's own tag "
                  "keys only (the abort mark and the tags a ring's deployment is created with)")
        allow(role, "DeploymentTarget", ["iot:DescribeThingGroup", "iot:CreateJob"], ring_group_arns)
        allow(role, "DeploymentJobs", ["iot:CreateJob", "iot:DescribeJob", "iot:UpdateJob", "iot:CancelJob"],
              [arn("iot", "job", "*")],
              why="Greengrass names the IoT job behind each deployment at run time; the rollout reads each ring's "
                  "job (DescribeJob process details) and a cancelled deployment cancels its job")
        # rollbacks.CloudWatchRollbacks: one statistic of the devices' rollback metric per ring
        allow(role, "ReadRollbacks", ["cloudwatch:GetMetricStatistics"], ["*"],
              why="GetMetricStatistics supports no resource-level permissions and no condition keys; it only reads "
                  "metric statistics (the engine reads the fleet's RolledBack/* metric)")
        allow(role, "DeploymentDevices", ["iot:DescribeThing", "iot:GetThingShadow", "iot:UpdateThingShadow",
                                          "iot:DeleteThingShadow"],
              [arn("iot", "thing", f"{cfg.core_thing_prefix}*")],
              why="dependent actions of greengrass:CreateDeployment, limited to the fleet's cores by their "
                  "thing-name prefix")
