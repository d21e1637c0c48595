"""SageMaker approval / the advance schedule -> EventBridge -> the rollout Lambda: wiring, the rings' thing
groups, permissions, and the asset it ships."""

from __future__ import annotations

import json
from pathlib import Path

from .cfn import Synth, allow
from .conftest import ROOT, require_cdk

require_cdk()

from edgeinfer_cdk.bundling import NOT_BUNDLED, lambda_requirements  # noqa: E402
from edgeinfer_cdk.config import FleetConfig  # noqa: E402
from edgeinfer_cdk.greengrass_baseline import baseline_components  # noqa: E402

GG = "arn:aws:greengrass:REGION:ACCOUNT"
ART = "<Storage/Artifacts.Arn>"
MODEL = "com.edgeinfer.Model.edgeinfer-models"
LAMBDA_LIMIT = 250 * 1024 * 1024  # unzipped code size


def test_model_package_group_and_approval_rule(synth: Synth) -> None:
    assert synth.props("Rollout/ModelPackageGroup")["ModelPackageGroupName"] == "edgeinfer-models"
    assert synth.resource("Rollout/ModelPackageGroup")["DeletionPolicy"] == "Retain"
    rule = synth.props("Rollout/ApprovedRule")
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["edgeinfer-models"], "ModelApprovalStatus": ["Approved"]}}
    assert rule["Targets"] == [{"Arn": "<Rollout/Function.Arn>", "Id": "Target0",
                                "DeadLetterConfig": {"Arn": "<Rollout/Failures.Arn>"},
                                "RetryPolicy": {"MaximumRetryAttempts": 4}}]


def test_a_schedule_advances_the_rollout_in_flight(synth: Synth) -> None:
    rule = synth.props("Rollout/AdvanceSchedule")
    assert rule["ScheduleExpression"] == "rate(5 minutes)" and rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Arn": "<Rollout/Function.Arn>", "Id": "Target0",
                                "DeadLetterConfig": {"Arn": "<Rollout/Failures.Arn>"},
                                "RetryPolicy": {"MaximumRetryAttempts": 0}}]
    permissions = {synth.text(synth.template["Resources"][synth.lid(p)]["Properties"]["SourceArn"])
                   for p in synth.of_type("AWS::Lambda::Permission")}
    assert permissions == {"<Rollout/ApprovedRule.Arn>", "<Rollout/AdvanceSchedule.Arn>"}


def test_the_rings_are_thing_groups_the_stack_makes(synth: Synth) -> None:
    assert synth.of_type("AWS::IoT::ThingGroup") == ["Iot/Ring-canary", "Iot/ThingGroup"]
    assert synth.props("Iot/Ring-canary")["ThingGroupName"] == "edgeinfer-canary"
    outputs = synth.template["Outputs"]
    assert next(o["Value"] for k, o in outputs.items() if k.startswith("RolloutRings")) == \
        "canary=edgeinfer-canary -> fleet=edgeinfer-fleet"


def test_function_runs_the_bundled_handler_one_rollout_at_a_time(synth: Synth) -> None:
    fn = synth.props("Rollout/Function")
    assert fn["Handler"] == "rollout_lambda.handler.handle"
    assert fn["Runtime"] == "python3.14" and fn["Architectures"] == ["arm64"]
    assert fn["ReservedConcurrentExecutions"] == 1
    assert fn["Timeout"] == 600 and fn["EphemeralStorage"] == {"Size": 2048}
    assert fn["Role"] == "<Rollout/Role.Arn>"
    env = fn["Environment"]["Variables"]
    assert env["EDGEINFER_BUCKET"] == "<Storage/Artifacts>"
    assert (env["EDGEINFER_MODEL_GROUP"], env["EDGEINFER_METRICS_NAMESPACE"]) == ("edgeinfer-models",
                                                                                 "edgeinfer/edgeinfer")
    assert json.loads(env["EDGEINFER_ROLLOUT"]) == FleetConfig().plan.model_dump(mode="json")
    assert [r["target"] for r in json.loads(env["EDGEINFER_ROLLOUT"])["rings"]] == ["edgeinfer-canary",
                                                                                   "edgeinfer-fleet"]
    assert json.loads(env["EDGEINFER_BASELINE"]) == baseline_components(FleetConfig())
    invoke = synth.props("Rollout/Function/EventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 1
    assert invoke["DestinationConfig"] == {"OnFailure": {"Destination": "<Rollout/Failures.Arn>"}}


def test_failure_queue_is_encrypted_and_tls_only(synth: Synth) -> None:
    assert synth.props("Rollout/Failures")["SqsManagedSseEnabled"] is True
    policy = synth.props("Rollout/Failures/Policy")["PolicyDocument"]["Statement"]
    deny = [s for s in policy if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allowed = [s for s in policy if s["Effect"] == "Allow"]  # EventBridge may deliver undeliverable events, no one else
    assert [(s["Principal"], s["Action"]) for s in allowed] == 2 * [({"Service": "events.amazonaws.com"},
                                                                    "sqs:SendMessage")]
    assert [s["Condition"] for s in allowed] == [{"ArnEquals": {"aws:SourceArn": f"<Rollout/{rule}.Arn>"}}
                                                 for rule in ("ApprovedRule", "AdvanceSchedule")]


def test_lambda_role_has_exactly_what_publish_and_the_rollout_call(synth: Synth) -> None:
    assert synth.trust("Rollout/Role") == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                            "Principal": {"Service": "lambda.amazonaws.com"}}]
    statements = synth.statements("Rollout/Role")
    expected = [
        # added by CDK for the on-failure destination
        {"Effect": "Allow", "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"],
         "Resource": ["<Rollout/Failures.Arn>"]},
        allow("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], ["<Rollout/Logs.Arn>"]),
        allow("ReadRegistryGroup", ["sagemaker:DescribeModelPackageGroup"],
              ["<Rollout/ModelPackageGroup.ModelPackageGroupArn>"]),
        allow("ListRegistryVersions", ["sagemaker:ListModelPackages"], ["*"]),
        allow("ReadRegistryVersions", ["sagemaker:DescribeModelPackage"],
              ["arn:aws:sagemaker:REGION:ACCOUNT:model-package/edgeinfer-models/*"]),
        allow("ArtifactKeysExist", ["s3:ListBucket"], [ART]),
        allow("ReadArtifacts", ["s3:GetObject"], [f"{ART}/edgeinfer/registry/edgeinfer-models/*/model.tar.gz",
                                                  f"{ART}/edgeinfer/models/edgeinfer-models/*/model.zip",
                                                  f"{ART}/edgeinfer/runtime/*"]),
        allow("WriteModelArtifacts", ["s3:PutObject"], [f"{ART}/edgeinfer/models/edgeinfer-models/*/model.zip"]),
        allow("ComponentVersions", ["greengrass:CreateComponentVersion", "greengrass:ListComponentVersions"],
              [f"{GG}:components:{MODEL}", f"{GG}:components:com.edgeinfer.Inference"]),
        allow("ReadRecipes", ["greengrass:GetComponent"], [f"{GG}:components:{MODEL}:versions:*",
                                                            f"{GG}:components:com.edgeinfer.Inference:versions:*"]),
        allow("Deploy", ["greengrass:CreateDeployment", "greengrass:ListDeployments"], ["*"]),
        allow("ReadDeployments", ["greengrass:GetDeployment"], [f"{GG}:deployments:*"]),
        allow("AbortRing", ["greengrass:CancelDeployment"], [f"{GG}:deployments:*"]),
        allow("TagRolloutDeployments", ["greengrass:TagResource"], [f"{GG}:deployments:*"],
              {"ForAllValues:StringEquals": {"aws:TagKeys": [
                  "edgeinfer:rollout", "edgeinfer:ring", "edgeinfer:previous", "edgeinfer:model-name",
                  "edgeinfer:aborted"]}}),
        allow("DeploymentTarget", ["iot:CreateJob", "iot:DescribeThingGroup"],
              ["arn:aws:iot:REGION:ACCOUNT:thinggroup/edgeinfer-canary",
               "arn:aws:iot:REGION:ACCOUNT:thinggroup/edgeinfer-fleet"]),
        allow("DeploymentJobs", ["iot:CancelJob", "iot:CreateJob", "iot:DescribeJob", "iot:UpdateJob"],
              ["arn:aws:iot:REGION:ACCOUNT:job/*"]),
        allow("ReadRollbacks", ["cloudwatch:GetMetricStatistics"], ["*"]),
        allow("DeploymentDevices", ["iot:DeleteThingShadow", "iot:DescribeThing", "iot:GetThingShadow",
                                    "iot:UpdateThingShadow"], ["arn:aws:iot:REGION:ACCOUNT:thing/edgeinfer-*"]),
    ]
    assert statements == expected
    # the only write actions: one model's artifacts, two components' versions, deployments (jobs) to the rings'
    # groups, cancelling and marking the rollout's own deployments
    writes = {a for s in statements for a in s["Action"] if a.split(":")[1].startswith(("Create", "Put", "Update",
                                                                                        "Delete", "Cancel"))}
    assert writes == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:PutObject", "greengrass:CreateComponentVersion",
                      "greengrass:CreateDeployment", "greengrass:CancelDeployment", "iot:CreateJob", "iot:UpdateJob",
                      "iot:CancelJob", "iot:UpdateThingShadow", "iot:DeleteThingShadow"}


def _asset(synth: Synth) -> Path:
    key = synth.props("Rollout/Function")["Code"]["S3Key"]
    return synth.outdir / f"asset.{key.removesuffix('.zip')}"


def test_asset_holds_the_projects_own_code_and_its_runtime_dependencies(synth: Synth) -> None:
    asset = _asset(synth)
    for rel in ("cloud/aws/publish.py", "cloud/aws/deploy.py", "greengrass/recipes/inference.yaml"):
        assert (asset / "edgeinfer" / rel).read_bytes() == (ROOT / "components/edgeinfer" / rel).read_bytes(), rel
    assert (asset / "rollout_lambda/handler.py").read_bytes() == \
        (ROOT / "cdk/edgeinfer_cdk/rollout_lambda/handler.py").read_bytes()
    bundled = {p.name.split("-")[0].lower().replace("_", "-") for p in asset.glob("*.dist-info")}
    wanted = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in lambda_requirements()}
    assert wanted <= bundled, wanted - bundled
    assert not bundled & set(NOT_BUNDLED)
    assert not list(asset.rglob("__pycache__")) and not list(asset.glob("*.egg-info"))
    aarch64 = list((asset / "numpy.libs").glob("*.so*")) if (asset / "numpy.libs").is_dir() else []
    assert all("aarch64" in p.name or "x86" not in p.name for p in aarch64)
    size = sum(p.stat().st_size for p in asset.rglob("*") if p.is_file())
    assert size < LAMBDA_LIMIT * 0.9, f"{size / 2**20:.0f} MiB leaves too little of Lambda's 250 MiB"
