"""The rollout Lambda's own code: event filter, baseline merge, and the whole path in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from edgeinfer_cdk.rollout_lambda.baseline import apply_baseline
from edgeinfer_cdk.rollout_lambda.event import Approval, NotForUs
from edgeinfer_cdk.rollout_lambda.handler import Settings, rollout

from .conftest import ROOT

#: mirrors edgeinfer_cdk.bundling.NOT_BUNDLED (compared there when aws_cdk is installed: test_config)
BLOCKED = ("onnxruntime", "typer", "rich", "psutil", "cv2")  # import names of what the asset leaves out
SPOOLER = '{"mqtt":{"spooler":{"storageType":"Disk","pluginName":"aws.greengrass.DiskSpooler"}}}'
BASELINE = {"aws.greengrass.Nucleus": {"componentVersion": "2.15.1", "configurationUpdate": {"merge": SPOOLER}},
            "aws.greengrass.DiskSpooler": {"componentVersion": "1.0.6"}}


def approval_event(group: str = "faces", status: str = "Approved", version: Any = 3) -> dict[str, Any]:
    return {"source": "aws.sagemaker", "detail-type": "SageMaker Model Package State Change",
            "detail": {"ModelPackageGroupName": group, "ModelPackageVersion": version, "ModelApprovalStatus": status,
                       "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{group}/3"}}


def test_an_approval_of_our_group_is_parsed() -> None:
    assert Approval.parse(approval_event(), "faces") == Approval(
        "faces", 3, "arn:aws:sagemaker:eu-west-1:123456789012:model-package/faces/3")


@pytest.mark.parametrize(("event", "why"), [
    (approval_event(group="other"), "'other' is not 'faces'"),
    (approval_event(status="Rejected"), "'Rejected' is not Approved"),
    (approval_event(version=None), "no usable ModelPackageVersion"),
    ({**approval_event(), "source": "aws.s3"}, "not a model package state change"),
])
def test_other_events_are_skipped_without_touching_aws(event: dict[str, Any], why: str) -> None:
    with pytest.raises(NotForUs, match=why):
        Approval.parse(event, "faces")
    answer = rollout(event, Settings("bucket", "faces", "fleet", BASELINE), clients=None)  # type: ignore[arg-type]
    assert why in answer["skipped"]


def test_settings_come_from_the_environment_the_stack_sets() -> None:
    env = {"EDGEINFER_BUCKET": "b", "EDGEINFER_MODEL_GROUP": "g", "EDGEINFER_THING_GROUP": "t",
           "EDGEINFER_BASELINE": json.dumps(BASELINE)}
    assert Settings.from_env(env) == Settings("b", "g", "t", BASELINE)
    with pytest.raises(RuntimeError, match="EDGEINFER_THING_GROUP is not set"):
        Settings.from_env({k: v for k, v in env.items() if k != "EDGEINFER_THING_GROUP"})


def test_baseline_is_added_to_a_deployment_without_it() -> None:
    components = {"com.edgeinfer.Model.faces": {"componentVersion": "2.0.0"}}
    assert apply_baseline(components, BASELINE) == ["aws.greengrass.Nucleus", "aws.greengrass.DiskSpooler"]
    assert components == {"com.edgeinfer.Model.faces": {"componentVersion": "2.0.0"}, **BASELINE}


def test_a_deployed_nucleus_keeps_its_version_and_other_settings() -> None:
    mine = {"componentVersion": "2.14.3", "configurationUpdate": {
        "merge": '{"logging":{"level":"DEBUG"},"mqtt":{"spooler":{"storageType":"Memory","maxSizeInBytes":1}}}',
        "reset": ["/iotDataEndpoint"]}}
    components = {"aws.greengrass.Nucleus": mine, "aws.greengrass.DiskSpooler": {"componentVersion": "1.0.5"}}
    assert apply_baseline(components, BASELINE) == ["aws.greengrass.Nucleus"]
    nucleus = components["aws.greengrass.Nucleus"]
    assert nucleus["componentVersion"] == "2.14.3"  # never up/downgraded behind the operator's back
    assert nucleus["configurationUpdate"]["reset"] == ["/iotDataEndpoint"]
    assert json.loads(nucleus["configurationUpdate"]["merge"]) == {
        "logging": {"level": "DEBUG"},
        "mqtt": {"spooler": {"storageType": "Disk", "pluginName": "aws.greengrass.DiskSpooler", "maxSizeInBytes": 1}}}
    assert components["aws.greengrass.DiskSpooler"] == {"componentVersion": "1.0.5"}
    assert apply_baseline(components, BASELINE) == []  # applying again changes nothing


def test_approval_publishes_and_deploys_with_only_the_bundled_dependencies(demo_pkgs: tuple[Path, Path]) -> None:
    """The real publish + deploy (moto + the Greengrass fake) in a fresh interpreter, the way the Lambda
    imports the code, with every dependency the asset leaves out made unimportable."""
    pytest.importorskip("moto", reason="moto (dev extra) stands in for S3, IoT and SageMaker")
    done = subprocess.run([sys.executable, "-m", "tests.cdk.lambda_probe", str(demo_pkgs[0]), *BLOCKED], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    answer = out["answer"]
    assert (answer["modelComponent"], answer["modelVersion"], answer["inferenceVersion"]) == (
        "com.edgeinfer.Model.faces", "2.0.0", "0.1.0")
    assert answer["baselineChanged"] == ["aws.greengrass.Nucleus", "aws.greengrass.DiskSpooler"]
    assert out["components"] == {"com.edgeinfer.Model.faces": {"componentVersion": "2.0.0"},
                                 "com.edgeinfer.Inference": {"componentVersion": "0.1.0"}, **BASELINE}
    assert out["previous"] == "INACTIVE"  # the operator's v1 deployment was replaced
    assert out["blocked_loaded"] == []
