"""deploy / progress / status against moto IoT and the Greengrass v2 fake (no device process here)."""

from __future__ import annotations

import json

import pytest

from edgeinfer.cloud.aws import deploy, progress, registry
from edgeinfer.cloud.aws.components import create_component, upload_runtime
from edgeinfer.cloud.aws.errors import DeploymentError
from edgeinfer.cloud.aws.ledger import Ledger
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.cloud.aws.targets import resolve
from edgeinfer.core.errors import ConfigError
from edgeinfer.greengrass.recipes import InferenceOptions, render_inference

from .conftest import BUCKET, add_core_device
from .test_cloud_publish import runtime_dir

GROUP = "faces"


@pytest.fixture
def published(aws, demo_pkgs, tmp_path):
    registry.register(aws, demo_pkgs[0], GROUP, BUCKET, approval="Approved")
    return publish(aws, GROUP, BUCKET, runtime_dir=runtime_dir(tmp_path))


def test_deploy_to_a_missing_target_creates_nothing(aws, published) -> None:
    with pytest.raises(DeploymentError, match=r"no thing group or thing named 'ghosts' in eu-west-1"):
        deploy.plan(aws, "ghosts", GROUP)
    with pytest.raises(DeploymentError, match=r"no thing group named 'cam-1'"):
        deploy.plan(aws, "cam-1", GROUP, kind="thinggroup")
    assert aws.greengrass.deployments == {}


def test_deploy_keeps_other_components_and_resets_changed_defaults(aws, published, tmp_path) -> None:
    add_core_device(aws, "cam-1", "cameras")
    target = resolve(aws, "cameras")
    aws.greengrass.create_deployment(  # what the target runs today: the nucleus, our v0.1.0, a merge
        targetArn=target.arn, deploymentName="existing", components={
            "aws.greengrass.Nucleus": {"componentVersion": "2.14.0"},
            "com.edgeinfer.Inference": {"componentVersion": published.inference_version, "configurationUpdate": {
                "merge": json.dumps({"source": {"uri": "rtsp://cam/stream"}})}},
            "com.edgeinfer.Model.faces": {"componentVersion": "1.0.0"}})
    # a new inference version whose defaults differ (telemetry window, log level)
    newer = render_inference(InferenceOptions(version="0.2.0", bucket=BUCKET, model=GROUP))
    newer["ComponentConfiguration"]["DefaultConfiguration"]["telemetry"]["window_s"] = 30.0
    newer["ComponentConfiguration"]["DefaultConfiguration"]["log_level"] = "WARNING"
    upload_runtime(aws, newer, runtime_dir(tmp_path / "v2"), Ledger())
    create_component(aws, newer, Ledger(), aws.account())
    p = deploy.create(aws, deploy.plan(aws, "cameras", GROUP, config_merge={"telemetry": {"mode": "alerts-only"}}))
    sent = aws.greengrass.deployments[p.deployment_id]
    comps = sent["components"]
    assert comps["aws.greengrass.Nucleus"] == {"componentVersion": "2.14.0"}, "other components stay"
    inf = comps["com.edgeinfer.Inference"]
    assert inf["componentVersion"] == "0.2.0"
    assert inf["configurationUpdate"]["reset"] == ["/log_level", "/telemetry/window_s"]
    assert json.loads(inf["configurationUpdate"]["merge"]) == {"source": {"uri": "rtsp://cam/stream"},
                                                               "telemetry": {"mode": "alerts-only"}}
    assert comps["com.edgeinfer.Model.faces"] == {"componentVersion": "1.0.0"}
    pol = sent["deploymentPolicies"]
    assert pol["failureHandlingPolicy"] == "ROLLBACK"
    assert pol["componentUpdatePolicy"]["action"] == "NOTIFY_COMPONENTS"
    assert sent["isLatestForTarget"] and p.previous is not None
    assert aws.greengrass.deployments[p.previous]["deploymentStatus"] == "INACTIVE"


def test_bad_config_merge_is_refused_before_deploying(aws, published) -> None:
    add_core_device(aws, "cam-1", "cameras")
    with pytest.raises(ConfigError, match=r"pipeline.queue_size"):
        deploy.plan(aws, "cameras", GROUP, config_merge={"pipeline": {"queue_size": -1}})
    with pytest.raises(DeploymentError, match=r"com\.edgeinfer\.Model\.faces 9\.0\.0 does not exist"):
        deploy.plan(aws, "cameras", GROUP, model_version="9.0.0")
    assert aws.greengrass.deployments == {}


def test_progress_until_devices_report_and_status_per_device(aws, published) -> None:
    add_core_device(aws, "cam-1", "cameras")
    add_core_device(aws, "cam-2", "cameras")
    p = deploy.create(aws, deploy.plan(aws, "cameras", GROUP))
    seen: list[list[tuple[str, str]]] = []
    reports = iter([("cam-1", "IN_PROGRESS"), ("cam-1", "SUCCEEDED"), ("cam-2", "FAILED")])

    def device_acts(_: float) -> None:  # each poll interval, one device reports something
        thing, status = next(reports)
        installed = {"com.edgeinfer.Inference": (published.inference_version, "RUNNING"),
                     "com.edgeinfer.Model.faces": ("1.0.0", "FINISHED")} if status == "SUCCEEDED" else None
        aws.greengrass.report(thing, p.deployment_id, status, installed,
                              "com.edgeinfer.Inference errored: model not found" if status == "FAILED" else None)

    final = progress.watch(aws, p.target, p.deployment_id, timeout_s=60, poll_s=0,
                           on_change=lambda s: seen.append([(d.device, d.status) for d in s]), sleep=device_acts)
    assert seen[0] == [("cam-1", "QUEUED"), ("cam-2", "QUEUED")]
    assert [(d.device, d.status) for d in final] == [("cam-1", "SUCCEEDED"), ("cam-2", "FAILED")]
    assert "model not found" in (final[1].reason or "")
    status = {s.device: s for s in progress.device_status(aws, p.target)}
    assert status["cam-1"].model == "faces 1.0.0" and status["cam-1"].inference.startswith(published.inference_version)
    assert status["cam-2"].inference is None and "FAILED" in (status["cam-2"].deployment or "")
