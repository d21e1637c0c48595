"""Run the rollout Lambda's code end to end in a fresh interpreter, as the Lambda would import it.

``python -m tests.cdk.lambda_probe PACKAGE BLOCKED...``: ``rollout_lambda`` is imported top-level (as
in the asset), every module in BLOCKED (what the asset leaves out) raises ImportError, AWS is moto
plus the project's Greengrass v2 fake. The story: an operator registered and approved v1, published
it with the runtime wheelhouse and deployed it; then v2 is registered and approved, and the
EventBridge event reaches the handler, which starts the rollout (canary ring); then a scheduled event
advances it (nothing to do yet). Prints the handler's answers and the resulting deployments.
"""

from __future__ import annotations

import importlib.abc
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGION, BUCKET, GROUP = "eu-west-1", "edgeinfer-probe-artifacts", "faces"
CANARY, FLEET = "probe-canary", "probe-fleet"
SCHEDULE = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
BASELINE = {"aws.greengrass.Nucleus": {"componentVersion": "2.15.1", "configurationUpdate": {
    "merge": '{"mqtt":{"spooler":{"storageType":"Disk","pluginName":"aws.greengrass.DiskSpooler"}}}'}},
    "aws.greengrass.DiskSpooler": {"componentVersion": "1.0.6"}}


class Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name} is not bundled into the rollout Lambda")


def main(package: Path, blocked: set[str]) -> dict[str, Any]:
    sys.meta_path.insert(0, Blocker(blocked))
    sys.path[:0] = [str(ROOT / "cdk" / "edgeinfer_cdk"), str(ROOT)]
    import boto3
    from moto import mock_aws
    from rollout_lambda.handler import Settings, rollout
    from rollout_lambda.plan import RolloutSettings

    from edgeinfer.cloud.aws import registry
    from edgeinfer.cloud.aws.clients import AwsClients
    from edgeinfer.cloud.aws.deploy import create, plan
    from edgeinfer.cloud.aws.publish import publish
    from tests.greengrass.conftest import add_core_device
    from tests.greengrass.fakes.greengrassv2 import FakeGreengrassV2
    from tests.greengrass.test_cloud_publish import runtime_dir

    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        session = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        s3, iot, sts = session.client("s3"), session.client("iot"), session.client("sts")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        aws = AwsClients(s3=s3, sagemaker=session.client("sagemaker"), iot=iot, sts=sts, region=REGION,
                         greengrass=FakeGreengrassV2(s3, iot, REGION, sts.get_caller_identity()["Account"]),
                         cloudwatch=session.client("cloudwatch"))
        add_core_device(aws, "probe-core-1", CANARY)
        add_core_device(aws, "probe-core-2", FLEET)
        registry.register(aws, package, GROUP, BUCKET, approval="Approved")  # v1, by the operator
        publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(Path(tmp)))
        first = create(aws, plan(aws, CANARY, GROUP, kind="thinggroup"), name="v1")
        create(aws, plan(aws, FLEET, GROUP, kind="thinggroup"), name="v1")
        v2 = registry.register(aws, package, GROUP, BUCKET)
        registry.approve(aws, GROUP, v2.version)
        event = {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
                 "detail": {"ModelPackageGroupName": GROUP, "ModelPackageVersion": v2.version,
                            "ModelApprovalStatus": "Approved", "ModelPackageArn": v2.arn}}
        rings = RolloutSettings(rings=[{"name": "canary", "target": CANARY}, {"name": "fleet", "target": FLEET}])
        settings = Settings(BUCKET, GROUP, "edgeinfer/probe", rings, BASELINE)
        answer = rollout(event, settings, aws)
        canary = answer["rings"][0]["deployment"]
        tick = rollout(SCHEDULE, settings, aws)
        fleet_arn = iot.describe_thing_group(thingGroupName=FLEET)["thingGroupArn"]
        latest = aws.greengrass.list_deployments(targetArn=fleet_arn)["deployments"]
        return {"answer": answer, "first": first.deployment_id,
                "components": aws.greengrass.get_deployment(deploymentId=canary)["components"],
                "previous": aws.greengrass.get_deployment(deploymentId=first.deployment_id)["deploymentStatus"],
                "fleet_latest": latest[0]["deploymentName"],
                "tick": {"rollout": tick["rollout"], "actions": tick["actions"],
                         "states": [r["state"] for r in tick["rings"]]},
                "blocked_loaded": sorted(n for n in sys.modules if n.split(".")[0] in blocked)}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), set(sys.argv[2:])), default=str))
