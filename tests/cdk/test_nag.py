"""cdk-nag: the app passes the AwsSolutions checks, every acknowledgement is on record with its reason,
and the checks really run (an unacknowledged wildcard fails synth)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from .cfn import Synth
from .conftest import CDK_DIR, require_cdk

require_cdk()

from aws_cdk import App, Stack, Validations  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from edgeinfer_cdk.config import FleetConfig  # noqa: E402
from edgeinfer_cdk.grants import allow  # noqa: E402
from edgeinfer_cdk.greengrass_baseline import BaselineDeployment, baseline_components  # noqa: E402

ACKNOWLEDGED = {  # construct -> rule findings; a new one must be added here, i.e. reviewed
    "Storage/AccessLogs": ["AwsSolutions-S1"],
    "Iot/TokenExchangeRole": ["models/*/*/model.zip", "runtime/*", "captures/*"],
    "Archive/DeliveryRole": ["/delivery-errors/*", "/telemetry/*"],
    "Rules/AlertRuleRole": ["Resource::*"],
    "Rules/RollbackRuleRole": ["Resource::*"],
    "Rules/MetricsRuleRole": ["Resource::*"],  # PutMetricData has no resource; limited to the fleet's namespace
    "Rollout/Failures": ["AwsSolutions-SQS3"],
    "Rollout/Role": ["Resource::*", "model-package/edgeinfer-models/*", "registry/edgeinfer-models/*/model.tar.gz",
                     "models/edgeinfer-models/*/model.zip", "edgeinfer/runtime/*",
                     "com.edgeinfer.Model.edgeinfer-models:versions:*", "com.edgeinfer.Inference:versions:*",
                     "deployments:*", "job/*", "thing/edgeinfer-*"],
}


def test_app_passes_the_aws_solutions_checks(synth: Synth) -> None:
    """Nothing failed in the real synth (a passing plugin leaves no report: that the app runs the checks at
    all is the next test's)."""
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_the_app_itself_runs_the_checks(tmp_path: Path) -> None:
    """The app as app.py builds it (not a test-made App), plus one unacknowledged wildcard: synth must fail
    with cdk-nag's finding. Bundling is skipped (``aws:cdk:bundling-stacks: []``): the checks read the
    template, not the Lambda's dependencies."""
    spec = importlib.util.spec_from_file_location("edgeinfer_cdk_app", CDK_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    app_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_module)
    app, stack = app_module.build({"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    role = iam.Role(stack, "ProbeRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    allow(role, "Wide", ["s3:GetObject"], ["arn:aws:s3:::probe-bucket/*"])
    finding = re.escape("AwsSolutions-IAM5[Resource::arn:aws:s3:::probe-bucket/*]")
    with pytest.raises(RuntimeError, match=rf"(?s)ValidationFailed.*{finding}"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert [r["pluginName"] for r in report["pluginReports"]] == ["AwsSolutions"]
    assert {v["ruleName"] for v in report["pluginReports"][0]["violations"]} == \
        {"AwsSolutions-IAM5[Resource::arn:aws:s3:::probe-bucket/*]"}, "only the probe: the stack itself is clean"


def test_every_acknowledgement_is_expected_and_has_a_reason(synth: Synth) -> None:
    metadata = json.loads((synth.outdir / f"{synth.stack}.metadata.json").read_text())
    found: dict[str, list[tuple[str, str]]] = {}
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                found.setdefault(path.removeprefix(f"/{synth.stack}/"), []).extend(entry["data"].items())
    assert sorted(found) == sorted(ACKNOWLEDGED)
    for path, acks in found.items():
        # one finding may be acknowledged by two statements (each with its own reason): count findings
        assert len({rule for rule, _ in acks}) == len(ACKNOWLEDGED[path]), (path, [a for a, _ in acks])
        for want in ACKNOWLEDGED[path]:
            assert any(want in rule for rule, _ in acks), (path, want)
        for rule, reason in acks:
            assert len(reason) >= 40, f"{path} {rule}: the reason must explain, got {reason!r}"


def test_an_unacknowledged_wildcard_fails_synth(tmp_path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    allow(role, "Wide", ["s3:GetObject"], ["arn:aws:s3:::bucket/*"])
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    finding = re.escape("AwsSolutions-IAM5[Resource::arn:aws:s3:::bucket/*]")
    with pytest.raises(RuntimeError, match=rf"(?s)ValidationFailed.*{finding}"):
        app.synth()


def test_baseline_deployment_targets_the_thing_group_with_the_disk_spooler(tmp_path) -> None:
    """Context baseline_deployment=true: the same baseline as the Lambda's, as the group's deployment."""
    from aws_cdk.assertions import Template

    cfg = FleetConfig(baseline_deployment=True)
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Baseline")
    BaselineDeployment(stack, "Baseline", cfg, "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeinfer-fleet")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    want = {name: {"ComponentVersion": spec["componentVersion"],
                   **({"ConfigurationUpdate": {"Merge": spec["configurationUpdate"]["merge"]}}
                      if "configurationUpdate" in spec else {})}
            for name, spec in baseline_components(cfg).items()}
    Template.from_stack(stack).has_resource_properties("AWS::GreengrassV2::Deployment", {
        "TargetArn": "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeinfer-fleet",
        "DeploymentName": "edgeinfer-baseline", "Components": want})
    spooler = json.loads(want["aws.greengrass.Nucleus"]["ConfigurationUpdate"]["Merge"])["mqtt"]["spooler"]
    assert spooler == {"storageType": "Disk", "pluginName": "aws.greengrass.DiskSpooler", "maxSizeInBytes": 16777216}
