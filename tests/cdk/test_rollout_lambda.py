"""The rollout Lambda's own code: event filter, baseline merge, and the whole path in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgeinfer_cdk.config import FleetConfig
from edgeinfer_cdk.rollout_lambda.baseline import apply_baseline
from edgeinfer_cdk.rollout_lambda.event import Approval, NotForUs
from edgeinfer_cdk.rollout_lambda.handler import Settings, rollout
from edgeinfer_cdk.rollout_lambda.plan import plan_name, registry_version

from edgeinfer.cloud.aws.rollout import ABORTED_TAG, MODEL_NAME_TAG
from edgeinfer.cloud.aws.rollout_job import iot_job_configuration

from .conftest import ROOT
from .rollback_events import deliver, health_payload

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
    settings = Settings("bucket", "faces", "edgeinfer/x", FleetConfig().plan, BASELINE)
    answer = rollout(event, settings, clients=None)  # type: ignore[arg-type]
    assert why in answer["skipped"]


def test_settings_come_from_the_environment_the_stack_sets() -> None:
    plan = FleetConfig().plan
    env = {"EDGEINFER_BUCKET": "b", "EDGEINFER_MODEL_GROUP": "g", "EDGEINFER_METRICS_NAMESPACE": "edgeinfer/x",
           "EDGEINFER_ROLLOUT": plan.model_dump_json(), "EDGEINFER_BASELINE": json.dumps(BASELINE)}
    assert Settings.from_env(env) == Settings("b", "g", "edgeinfer/x", plan, BASELINE)
    with pytest.raises(RuntimeError, match="EDGEINFER_ROLLOUT is not set"):
        Settings.from_env({k: v for k, v in env.items() if k != "EDGEINFER_ROLLOUT"})


def test_the_default_plan_is_canary_then_fleet_and_each_version_has_its_own_name() -> None:
    plan = FleetConfig(fleet="plant7").plan
    assert [(r.name, r.target, r.soak_s) for r in plan.rings] == [("canary", "plant7-canary", 3600),
                                                                  ("fleet", "plant7-fleet", 0)]
    assert plan.advance_every_minutes == 5
    assert plan_name("faces", 12) == "faces-v12"
    long = "a" * 63
    assert plan_name(long, 7) == "a" * 37 + "-v7" and len(plan_name(long, 12345)) == 40
    assert registry_version("edgeinfer-faces-v12-canary", "faces", "canary") == 12
    for other in ("edgeinfer-faces-v12-canary-revert", "edgeinfer-faces-v12-fleet", "edgeinfer-plates-v3-canary",
                  "edgeinfer-faces-canary", "faces-v12-canary"):
        assert registry_version(other, "faces", "canary") is None, other


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


def test_approval_and_schedule_run_with_only_the_bundled_dependencies(demo_pkgs: tuple[Path, Path]) -> None:
    """The real publish + rollout start, then a scheduled advance (moto + the Greengrass fake), in a fresh
    interpreter, the way the Lambda imports the code, with every dependency the asset leaves out made
    unimportable."""
    pytest.importorskip("moto", reason="moto (dev extra) stands in for S3, IoT, SageMaker and CloudWatch")
    done = subprocess.run([sys.executable, "-m", "tests.cdk.lambda_probe", str(demo_pkgs[0]), *BLOCKED], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    answer = out["answer"]
    assert (answer["modelComponent"], answer["modelVersion"], answer["inferenceVersion"]) == (
        "com.edgeinfer.Model.faces", "2.0.0", "0.1.0")
    assert answer["rollout"] == "faces-v2" and answer["actions"][0].startswith("deployed ring canary")
    assert out["components"] == {"com.edgeinfer.Model.faces": {"componentVersion": "2.0.0"},
                                 "com.edgeinfer.Inference": {"componentVersion": "0.1.0"}, **BASELINE}
    assert out["previous"] == "INACTIVE"  # the operator's v1 deployment on the canary group was replaced
    assert out["fleet_latest"] == "v1"  # the fleet ring is untouched until the canary passed
    assert out["tick"] == {"rollout": "faces-v2", "actions": [], "states": ["deploying", "pending"]}
    assert out["blocked_loaded"] == []


# ---- the rings, end to end: the handler against moto (S3, IoT + jobs, SageMaker, CloudWatch) and the
# ---- botocore-validated Greengrass fake, with devices' outcomes simulated and rollbacks through the stack's rule

CANARY = [f"cam-c{i}" for i in range(4)]
FLEET = [f"cam-f{i}" for i in range(4)]
GROUP, BUCKET, REGION, NAMESPACE = "faces", "edgeinfer-test-artifacts", "eu-west-1", "edgeinfer/edgeinfer"
SCHEDULE = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {},
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/edgeinfer-fleet-AdvanceSchedule"]}


@dataclass
class Fleet:
    clients: Any
    clock: Any
    settings: Settings
    approval: dict[str, Any]
    reported_name: str  # the model name devices report (the package manifest's), not the group
    calls: Counter[str]
    recording: list[bool]

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Lambda's handler logic, with every AWS call it makes recorded (as IAM actions)."""
        self.recording[0] = True
        try:
            return rollout(event, self.settings, self.clients, self.clock)
        finally:
            self.recording[0] = False

    def deployment(self, name: str) -> dict[str, Any] | None:
        found = [d for d in self.clients.greengrass.deployments.values() if d["deploymentName"] == name]
        return found[-1] if found else None

    def report(self, ring: str, outcomes: dict[str, str]) -> None:
        """Devices take the ring's deployment; "rolled_back": it succeeds, then the device's health gate goes
        back and sends its health event with cause=rollback, which the stack's rule counts."""
        dep = self.deployment(f"edgeinfer-faces-v2-{ring}")
        assert dep is not None
        for device, outcome in outcomes.items():
            self.clients.greengrass.report(device, dep["deploymentId"], "SUCCEEDED" if outcome == "rolled_back"
                                           else outcome, reason="component failed" if outcome == "FAILED" else None)
            if outcome == "rolled_back":
                event = health_payload(device, self.reported_name, "1.0.0", rolled_back_from="2.0.0",
                                       cause="rollback", at=self.clock())
                assert deliver(self.clients.cloudwatch, NAMESPACE, event, device, self.clock())


def _iam_action(service: str, op: str) -> str:
    s3 = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket"}
    prefix = {"greengrassv2": "greengrass", "monitoring": "cloudwatch"}.get(service, service)
    return f"{prefix}:{s3.get(op, op) if prefix == 's3' else op}"


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch, demo_pkgs: tuple[Path, Path], tmp_path: Path) -> Iterator[Fleet]:
    pytest.importorskip("moto", reason="moto (dev extra) stands in for S3, IoT, SageMaker and CloudWatch")
    import boto3
    from moto import mock_aws

    from edgeinfer.cloud.aws import registry
    from edgeinfer.cloud.aws.clients import AwsClients
    from edgeinfer.cloud.aws.deploy import create, plan
    from edgeinfer.cloud.aws.publish import publish
    from edgeinfer.core.modelpkg import load_package
    from tests.greengrass.conftest import add_core_device
    from tests.greengrass.fakes.greengrassv2 import FakeGreengrassV2
    from tests.greengrass.rollout_sim import Clock
    from tests.greengrass.test_cloud_publish import runtime_dir

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                 "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3, iot, sts, sm, cw = (session.client(n) for n in ("s3", "iot", "sts", "sagemaker", "cloudwatch"))
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        clock = Clock()
        gg = FakeGreengrassV2(s3, iot, REGION, sts.get_caller_identity()["Account"])
        gg.clock = clock
        clients = AwsClients(s3=s3, sagemaker=sm, iot=iot, sts=sts, greengrass=gg, region=REGION, cloudwatch=cw)
        # the fleet as the stack names it, with the plan's health bounds for a 4-device canary
        cfg = FleetConfig.from_context({"rollout": {"health": {"max_failed_pct": 20, "max_rolled_back_pct": 20,
                                                              "min_reported": 3, "min_reported_pct": 100}}}.get)
        for device in CANARY:
            add_core_device(clients, device, cfg.plan.rings[0].target)
        for device in FLEET:
            add_core_device(clients, device, cfg.plan.rings[1].target)
        registry.register(clients, demo_pkgs[0], GROUP, BUCKET, approval="Approved")  # v1, by the operator
        publish(clients, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))
        for ring in cfg.plan.rings:  # v1 runs on both rings
            create(clients, plan(clients, ring.target, GROUP, kind="thinggroup"), name="v1")
        v2 = registry.register(clients, demo_pkgs[0], GROUP, BUCKET)
        registry.approve(clients, GROUP, v2.version)
        calls: Counter[str] = Counter()
        recording = [False]

        def record(model: Any, **_: Any) -> None:
            if recording[0]:
                calls[_iam_action(model.service_model.signing_name, model.name)] += 1

        for c in (s3, iot, sm, cw):
            c.meta.events.register("before-call.*.*", record)
        gg_seen = len(gg.calls)
        world = Fleet(clients, clock, Settings(BUCKET, GROUP, NAMESPACE, cfg.plan, BASELINE),
                      approval_event(GROUP, version=v2.version), load_package(demo_pkgs[0]).manifest.name, calls,
                      recording)
        original = world.invoke

        def invoke_and_count(event: dict[str, Any]) -> dict[str, Any]:
            before = len(gg.calls)
            try:
                return original(event)
            finally:
                for op, _ in gg.calls[before:]:
                    calls[f"greengrass:{op}"] += 1

        world.invoke = invoke_and_count  # type: ignore[method-assign]
        assert gg_seen == len(gg.calls)
        yield world


def test_approval_starts_the_canary_ring_only(fleet: Fleet) -> None:
    answer = fleet.invoke(fleet.approval)
    canary = fleet.deployment("edgeinfer-faces-v2-canary")
    assert canary is not None and answer["rollout"] == "faces-v2"
    assert answer["actions"] == [f"deployed ring canary ({canary['deploymentId']})"]
    assert [(r["ring"], r["state"], r["targeted"]) for r in answer["rings"]] == [("canary", "deploying", 4),
                                                                                 ("fleet", "pending", 0)]
    assert canary["targetArn"].endswith(":thinggroup/edgeinfer-canary")
    assert canary["components"] == {"com.edgeinfer.Model.faces": {"componentVersion": "2.0.0"},
                                    "com.edgeinfer.Inference": {"componentVersion": "0.1.0"}, **BASELINE}
    assert canary["iotJobConfiguration"] == iot_job_configuration(fleet.settings.rollout.aws)
    assert canary["tags"][MODEL_NAME_TAG] == fleet.reported_name == "blazeface-full-range"
    assert fleet.deployment("edgeinfer-faces-v2-fleet") is None
    made = len(fleet.clients.greengrass.deployments)
    # EventBridge delivers the approval again, and the schedule ticks: nothing more is deployed
    assert fleet.invoke(fleet.approval)["actions"] == []
    tick = fleet.invoke(SCHEDULE)
    assert (tick["rollout"], tick["actions"], [r["state"] for r in tick["rings"]]) == (
        "faces-v2", [], ["deploying", "pending"])
    assert len(fleet.clients.greengrass.deployments) == made


def test_a_scheduled_advance_after_a_healthy_soak_widens_to_the_fleet(fleet: Fleet) -> None:
    fleet.invoke(fleet.approval)
    fleet.clock.advance(120)
    fleet.report("canary", {d: "SUCCEEDED" for d in CANARY})
    tick = fleet.invoke(SCHEDULE)
    assert tick["actions"] == [] and tick["rings"][0]["state"] == "soaking"
    fleet.clock.advance(3600)
    tick = fleet.invoke(SCHEDULE)
    widened = fleet.deployment("edgeinfer-faces-v2-fleet")
    assert widened is not None and tick["actions"] == [f"deployed ring fleet ({widened['deploymentId']})"]
    assert widened["targetArn"].endswith(":thinggroup/edgeinfer-fleet")
    canary = fleet.deployment("edgeinfer-faces-v2-canary")
    assert canary is not None and widened["components"] == canary["components"]  # the same versions + baseline
    fleet.report("fleet", {d: "SUCCEEDED" for d in FLEET})
    tick = fleet.invoke(SCHEDULE)
    assert tick["outcome"] == "done" and [r["state"] for r in tick["rings"]] == ["passed", "passed"]
    assert fleet.invoke(SCHEDULE)["actions"] == []


def test_a_canary_whose_devices_roll_back_is_aborted_and_the_fleet_never_gets_it(fleet: Fleet) -> None:
    fleet.invoke(fleet.approval)
    fleet.clock.advance(120)
    fleet.report("canary", {"cam-c0": "SUCCEEDED", "cam-c1": "SUCCEEDED", "cam-c2": "rolled_back",
                            "cam-c3": "rolled_back"})
    tick = fleet.invoke(SCHEDULE)
    assert tick["outcome"] == "aborted"
    assert tick["actions"][0].startswith("aborted ring canary: 2/4 devices rolled the model back (50% > 20%)")
    canary = fleet.deployment("edgeinfer-faces-v2-canary")
    assert canary is not None and fleet.calls["greengrass:CancelDeployment"] == 1
    assert fleet.clients.iot.describe_job(jobId=canary["iotJobId"])["job"]["status"] == "CANCELED"
    assert "reverted by deployment" in canary["tags"][ABORTED_TAG]
    revert = fleet.deployment("edgeinfer-faces-v2-canary-revert")
    assert revert is not None and revert["components"]["com.edgeinfer.Model.faces"] == {"componentVersion": "1.0.0"}
    fleet.clock.advance(86400)
    assert fleet.invoke(SCHEDULE)["actions"] == []
    assert fleet.deployment("edgeinfer-faces-v2-fleet") is None


def test_the_lambda_role_allows_every_call_the_rollout_makes(fleet: Fleet, synth: Any) -> None:
    """Every AWS call of an approval, a widening and an abort is an action the synthesised role grants, and every
    tag the rollout writes is one its TagResource condition allows."""
    fleet.invoke(fleet.approval)
    fleet.clock.advance(120)
    fleet.report("canary", {d: "SUCCEEDED" for d in CANARY})
    fleet.clock.advance(3600)
    fleet.invoke(SCHEDULE)
    fleet.report("fleet", {"cam-f0": "SUCCEEDED", "cam-f1": "rolled_back", "cam-f2": "rolled_back",
                           "cam-f3": "SUCCEEDED"})
    fleet.clock.advance(120)
    assert fleet.invoke(SCHEDULE)["outcome"] == "aborted"
    statements = synth.statements("Rollout/Role")
    granted = {a for st in statements for a in st["Action"]}
    made = set(fleet.calls) - {"sts:GetCallerIdentity"}  # needs no permission
    assert {"greengrass:CancelDeployment", "greengrass:TagResource", "cloudwatch:GetMetricStatistics",
            "iot:DescribeJob", "greengrass:CreateDeployment"} <= made
    assert made - granted == set(), made - granted
    allowed_tags = next(st for st in statements if st.get("Sid") == "TagRolloutDeployments")["Condition"][
        "ForAllValues:StringEquals"]["aws:TagKeys"]
    written = {k for d in fleet.clients.greengrass.deployments.values() if d["deploymentName"] != "v1"
               for k in d["tags"]}
    assert written and written <= set(allowed_tags), written - set(allowed_tags)
