"""AWS rollouts against moto (IoT jobs, CloudWatch) and the botocore-validated Greengrass v2 fake, with
simulated device outcomes: the plan stops at the canary when its criteria trip and widens when they hold."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest

from edgeinfer.cloud.aws import registry
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.cloud.aws.rollbacks import CloudWatchRollbacks
from edgeinfer.cloud.aws.rollout import ABORTED_TAG, MODEL_NAME_TAG, GreengrassRollout, device_page
from edgeinfer.cloud.rollout import engine
from edgeinfer.cloud.rollout.plan import parse_plan
from edgeinfer.core.modelpkg import load_package

from .conftest import BUCKET, REGION, add_core_device
from .rollout_sim import NAMESPACE, CallCounter, Clock, health_event, rule_rollback
from .test_cloud_publish import runtime_dir

GROUP = "faces"
REPORTED = "blazeface-full-range"  # the demo package's manifest name: what devices report as model.name
CANARY = [f"cam-c{i}" for i in range(5)]
FLEET = [f"cam-f{i}" for i in range(4)]


@pytest.fixture
def published(aws, demo_pkgs, tmp_path):
    assert load_package(demo_pkgs[0]).manifest.name == REPORTED
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved")
    return publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))


@pytest.fixture
def fleet(aws, published):
    for d in CANARY:
        add_core_device(aws, d, "ring-canary")
    for d in FLEET:
        add_core_device(aws, d, "ring-fleet")
    for group in ("ring-canary", "ring-fleet"):  # what the rings run today
        arn = aws.iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
        aws.greengrass.create_deployment(targetArn=arn, deploymentName="baseline",
                                         components={"aws.greengrass.Nucleus": {"componentVersion": "2.14.0"}})
    return dataclasses.replace(aws, cloudwatch=boto3.client("cloudwatch", region_name=REGION))


def make_plan(published, **health):
    return parse_plan({
        "name": "faces-v2", "model": GROUP, "model_version": published.model_version,
        "rings": [{"name": "canary", "target": "ring-canary", "soak_s": 3600},
                  {"name": "fleet", "target": "ring-fleet", "soak_s": 0}],
        "health": {"max_failed_pct": 20, "max_rolled_back_pct": 20, "min_reported": 3, "min_reported_pct": 100,
                   **health},
        "aws": {"abort": [{"failure_type": "FAILED", "threshold_pct": 50, "min_executed": 4}]}})


def driver(clients, clock):
    clients.greengrass.clock = clock  # one timeline: deployments, reports and rollbacks
    return GreengrassRollout(clients, CloudWatchRollbacks(clients.cloudwatch, NAMESPACE), now=clock)


def report_all(clients, dep_id, outcomes, clock, new="1.0.0"):
    for device, outcome in outcomes.items():
        if outcome == "rolled_back":  # the deployment succeeds; the device's health gate then goes back
            clients.greengrass.report(device, dep_id, "SUCCEEDED")
            rule_rollback(clients.cloudwatch, health_event(device, REPORTED, "0.9.0", new, "latency p95 3.1x previous",
                                                                clock()))
        else:
            clients.greengrass.report(device, dep_id, outcome, reason="component failed to start"
                                      if outcome == "FAILED" else None)


def test_canary_that_rolls_back_stops_the_rollout_and_reverts(fleet, published) -> None:
    clock, plan = Clock(), make_plan(published)
    d = driver(fleet, clock)
    st = engine.advance(d, plan, clock, start=True)
    canary = st.rings[0]
    assert st.actions == [f"deployed ring canary ({canary.progress.deployment})"]
    sent = fleet.greengrass.deployments[canary.progress.deployment]
    assert sent["deploymentName"] == "edgeinfer-faces-v2-canary"
    assert sent["tags"][MODEL_NAME_TAG] == REPORTED  # the rollbacks are read under the name devices report
    assert sent["iotJobConfiguration"]["abortConfig"]["criteriaList"][0] == {
        "failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50.0, "minNumberOfExecutedThings": 4}
    assert sent["iotJobConfiguration"]["jobExecutionsRolloutConfig"]["exponentialRate"]["baseRatePerMinute"] == 10
    job = fleet.iot.describe_job(jobId=sent["iotJobId"])["job"]  # the IoT job AWS made carries the same criteria
    assert job["abortConfig"]["criteriaList"][0]["failureType"] == "FAILED"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert (canary.state, canary.progress.targeted, canary.progress.in_progress) == ("deploying", 5, 5)

    report_all(fleet, canary.progress.deployment, {"cam-c0": "SUCCEEDED", "cam-c1": "SUCCEEDED",
                                                   "cam-c2": "rolled_back", "cam-c3": "rolled_back"}, clock)
    st = engine.advance(d, plan, clock)
    assert st.actions[0].startswith("aborted ring canary: 2/4 devices rolled the model back (50% > 20%)")
    canary, ring2 = st.rings
    assert canary.state == "aborted" and st.outcome == "aborted"
    p = canary.progress
    assert (p.targeted, p.succeeded, p.failed, p.rolled_back) == (5, 2, 0, 2)
    assert p.reasons == {"rolled back by the device health gate": 2}
    assert "reverted by deployment" in canary.why
    tags = fleet.greengrass.deployments[p.deployment]["tags"]
    assert tags[ABORTED_TAG] == canary.why and fleet.greengrass.deployments[p.deployment]["deploymentStatus"] \
        in ("CANCELED", "INACTIVE")
    revert = [x for x in fleet.greengrass.deployments.values() if x["deploymentName"].endswith("-revert")]
    assert [r["components"] for r in revert] == [{"aws.greengrass.Nucleus": {"componentVersion": "2.14.0"}}]
    assert fleet.iot.describe_job(jobId=sent["iotJobId"])["job"]["status"] == "CANCELED"
    # nothing ever reaches the next ring, however often the rollout is advanced or how long it soaks
    clock.advance(86400)
    assert engine.advance(d, plan, clock).actions == []
    assert ring2.state == "pending"
    assert not [x for x in fleet.greengrass.deployments.values() if x["deploymentName"] == "edgeinfer-faces-v2-fleet"]


def test_iot_abort_criteria_stop_the_canary(fleet, published) -> None:
    clock, plan = Clock(), make_plan(published, max_failed_pct=100)  # only the IoT job's own criteria judge
    d = driver(fleet, clock)
    dep_id = engine.advance(d, plan, clock, start=True).rings[0].progress.deployment
    report_all(fleet, dep_id, {"cam-c0": "SUCCEEDED", "cam-c1": "FAILED", "cam-c2": "FAILED", "cam-c3": "SUCCEEDED"},
               clock)
    job = fleet.iot.describe_job(jobId=fleet.greengrass.deployments[dep_id]["iotJobId"])["job"]
    assert job["status"] == "CANCELED" and job["jobProcessDetails"]["numberOfCanceledThings"] == 1
    st = engine.advance(d, plan, clock)
    canary = st.rings[0]
    assert canary.state == "aborted" and "abortConfig: FAILED 2/4 executed >= 50%" in canary.why
    assert (canary.progress.failed, canary.progress.reasons) == (2, {"failed": 2})
    rows, token = device_page(fleet, plan, plan.rings[0], status="FAILED")
    assert sorted((r.device, r.status, r.reason) for r in rows) == [
        ("cam-c1", "FAILED", "component failed to start"), ("cam-c2", "FAILED", "component failed to start")]
    assert token is None


def test_healthy_canary_soaks_then_widens(fleet, published) -> None:
    clock, plan = Clock(), make_plan(published)
    d = driver(fleet, clock)
    dep_id = engine.advance(d, plan, clock, start=True).rings[0].progress.deployment
    report_all(fleet, dep_id, {c: "SUCCEEDED" for c in CANARY[:4]} | {"cam-c4": "rolled_back"}, clock)  # 20%: ok
    st = engine.advance(d, plan, clock)
    assert st.actions == [] and st.rings[0].state == "soaking" and st.rings[1].state == "pending"
    clock.advance(3590)  # (the clock started a moment before the deployment was made)
    assert engine.advance(d, plan, clock).actions == []
    clock.advance(20)
    st = engine.advance(d, plan, clock)
    assert st.rings[0].state == "passed" and st.actions[0].startswith("deployed ring fleet")
    fleet_dep = st.rings[1].progress.deployment
    assert fleet.greengrass.deployments[fleet_dep]["targetArn"].endswith("thinggroup/ring-fleet")
    report_all(fleet, fleet_dep, {f: "SUCCEEDED" for f in FLEET}, clock)
    st = engine.advance(d, plan, clock)
    assert st.outcome == "done" and [v.state for v in st.rings] == ["passed", "passed"]
    assert [(v.progress.targeted, v.progress.succeeded, v.progress.rolled_back) for v in st.rings] == [
        (5, 4, 1), (4, 4, 0)]


def test_status_of_a_10000_device_fleet_costs_a_constant_per_ring(aws, published) -> None:
    """Item 5: 100 canary + 9,900 fleet devices; a status refresh reads aggregates, never devices."""
    cw = boto3.client("cloudwatch", region_name=REGION)
    clients = dataclasses.replace(aws, cloudwatch=cw)
    for group, n in (("ring-canary", 100), ("ring-fleet", 9900)):
        arn = aws.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
        for i in range(n):
            aws.greengrass.register_core_device(f"{group}-{i}", [arn])
    plan = make_plan(published, min_reported_pct=90)
    clock = Clock()
    d = driver(clients, clock)
    canary = engine.advance(d, plan, clock, start=True).rings[0].progress.deployment
    for i in range(100):
        aws.greengrass.report(f"ring-canary-{i}", canary, "SUCCEEDED")
    clock.advance(3700)
    fleet_dep = engine.advance(d, plan, clock).rings[1].progress.deployment
    for i in range(9900):
        aws.greengrass.report(f"ring-fleet-{i}", fleet_dep, "FAILED" if i % 100 == 0 else "SUCCEEDED")
    clock.advance(300)  # (a rollback in the minute the ring started counts for the ring before: rollbacks.py)
    for i in range(3):
        event = health_event(f"ring-fleet-{i + 1}", REPORTED, "1", published.model_version, "no detections", clock())
        rule_rollback(cw, event)
    counter = CallCounter(aws.iot, cw, greengrass=aws.greengrass)
    st = engine.status(d, plan, clock)
    assert [(v.progress.targeted, v.progress.succeeded, v.progress.failed, v.progress.rolled_back)
            for v in st.rings] == [(100, 100, 0, 0), (9900, 9801 - 3, 99, 3)]
    per_ring = counter.total / len(plan.rings)
    assert per_ring <= 8, counter.detail()
    assert counter.total == st.calls, (counter.detail(), st.calls)


def test_cli_start_status_and_abort(fleet, published, tmp_path) -> None:
    from typer.testing import CliRunner

    from edgeinfer.cli.aws import build_aws_app

    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(make_plan(published).model_dump_json())
    app = build_aws_app(lambda region, profile: fleet)
    runner, ns = CliRunner(), ["--metrics-namespace", NAMESPACE]
    res = runner.invoke(app, ["rollout", "start", str(plan_file), *ns, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["actions"][0].startswith("deployed ring canary") and out["rings"][0]["state"] == "deploying"
    dep_id = next(d for d, x in fleet.greengrass.deployments.items() if x["deploymentName"].endswith("-canary"))
    report_all(fleet, dep_id, {"cam-c0": "SUCCEEDED", "cam-c1": "FAILED", "cam-c2": "rolled_back",
                               "cam-c3": "SUCCEEDED"}, engine.utcnow)
    res = runner.invoke(app, ["rollout", "status", str(plan_file), *ns, "--devices", "canary"])
    assert res.exit_code == 0 and "failing" in res.output and "cam-c1" in res.output, res.output
    assert "component failed to start" in res.output
    assert not any(x.get("tags", {}).get(ABORTED_TAG) for x in fleet.greengrass.deployments.values()), \
        "status changes nothing"
    res = runner.invoke(app, ["rollout", "advance", str(plan_file), *ns])
    assert res.exit_code == 1 and "aborted ring canary" in res.output, res.output
    res = runner.invoke(app, ["rollout", "status", str(plan_file), "--json", *ns])
    assert '"outcome": "aborted"' in res.output
    plan_file.write_text("name: Bad Name\nrings: []\n")
    res = runner.invoke(app, ["rollout", "status", str(plan_file)])
    assert res.exit_code != 0 and "invalid rollout plan" in str(res.exception)
