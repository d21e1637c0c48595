"""The CLI faces: `edgeinfer greengrass ...` and `edgeinfer aws ...` (the aws app built around moto + the fake)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgeinfer.cli.aws import build_aws_app
from edgeinfer.cli.greengrass import greengrass_app
from edgeinfer.cloud.aws.errors import DeploymentError, RegistryError
from edgeinfer.greengrass.errors import RecipeError

from .conftest import BUCKET, add_core_device
from .test_cloud_publish import runtime_dir

runner = CliRunner()


def test_render_writes_checked_recipes_and_the_model_artifact(tmp_path: Path, demo_pkgs) -> None:
    out = tmp_path / "recipes"
    res = runner.invoke(greengrass_app, ["render", "--version", "1.2.3", "--out", str(out), "--bucket", "my-artifacts",
                                         "--model-package", str(demo_pkgs[0]), "--platform", "linux-amd64",
                                         "--platform", "linux-aarch64-jetson"])
    assert res.exit_code == 0, res.output
    inference = yaml.safe_load((out / "com.edgeinfer.Inference-1.2.3.yaml").read_text())
    assert [m["Name"] for m in inference["Manifests"]] == ["linux-aarch64-jetson", "linux-amd64"]
    model = out / "com.edgeinfer.Model.blazeface-full-range-1.0.0.yaml"
    assert model.is_file() and (out / "artifacts/com.edgeinfer.Model.blazeface-full-range/1.0.0/model.zip").is_file()
    res = runner.invoke(greengrass_app, ["validate", str(out / "com.edgeinfer.Inference-1.2.3.yaml"), str(model)])
    assert res.exit_code == 0 and res.output.count("ok") == 2, res.output


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("RecipeFormatVersion: '2020-01-25'\nComponentName: com.x.Y\nComponentVersion: '1.0'\n"
                   "ComponentPublisher: me\nManifests:\n  - Lifecycle:\n"
                   "      Run: python3 app.py {com.other:work:path}\n")
    res = runner.invoke(greengrass_app, ["validate", str(bad)])
    assert isinstance(res.exception, RecipeError)
    msg = str(res.exception)
    assert "ComponentVersion '1.0' is not a semantic version" in msg
    assert "unknown key 'Run' (Greengrass keys are case-sensitive: write 'run')" in msg
    res = runner.invoke(greengrass_app, ["render", "--version", "1.0", "--out", str(tmp_path / "x")])
    assert isinstance(res.exception, RecipeError) and "not a semantic version" in str(res.exception)
    res = runner.invoke(greengrass_app, ["render", "--version", "1.0.0", "--out", str(tmp_path / "x"),
                                         "--platform", "windows-amd64"])
    assert isinstance(res.exception, RecipeError) and "unknown platform(s) ['windows-amd64']" in str(res.exception)


def test_aws_commands_end_to_end_on_the_control_plane(aws, demo_pkgs, tmp_path: Path) -> None:
    app = build_aws_app(lambda region, profile: aws)
    add_core_device(aws, "cam-1", "cameras")
    res = runner.invoke(app, ["register", str(demo_pkgs[0]), "--group", "faces", "--bucket", BUCKET])
    assert res.exit_code == 0 and "registered faces v1 (PendingManualApproval)" in res.output, res.output
    res = runner.invoke(app, ["publish", "--group", "faces", "--bucket", BUCKET])
    assert isinstance(res.exception, RegistryError) and "edgeinfer aws approve" in str(res.exception)
    assert runner.invoke(app, ["approve", "--group", "faces", "--version", "1"]).exit_code == 0
    res = runner.invoke(app, ["publish", "--group", "faces", "--bucket", BUCKET, "--runtime-dir",
                              str(runtime_dir(tmp_path))])
    assert res.exit_code == 0 and "created component com.edgeinfer.Model.faces 1.0.0" in res.output, res.output
    res = runner.invoke(app, ["deploy", "ghosts", "--group", "faces", "--wait", "0"])
    assert isinstance(res.exception, DeploymentError)
    res = runner.invoke(app, ["deploy", "cameras", "--group", "faces", "--wait", "0"])
    assert res.exit_code == 0 and "com.edgeinfer.Model.faces 1.0.0" in res.output, res.output
    dep_id = next(iter(aws.greengrass.deployments))
    assert aws.greengrass.deployments[dep_id]["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    help_text = runner.invoke(app, ["deploy", "--help"]).output
    assert "--no-rollback" in help_text and "--no-no-rollback" not in help_text
    res = runner.invoke(app, ["deploy", "cam-1", "--kind", "thing", "--group", "faces", "--wait", "0",
                              "--no-rollback"])
    assert res.exit_code == 0, res.output
    latest = next(d for d in aws.greengrass.deployments.values() if d["targetArn"].endswith(":thing/cam-1"))
    assert latest["deploymentPolicies"]["failureHandlingPolicy"] == "DO_NOTHING"
    aws.greengrass.report("cam-1", dep_id, "SUCCEEDED", {"com.edgeinfer.Model.faces": ("1.0.0", "FINISHED")})
    res = runner.invoke(app, ["status", "cameras"])
    assert res.exit_code == 0 and "cam-1" in res.output and "faces 1.0.0" in res.output, res.output


@pytest.mark.parametrize("kind", ["sideways"])
def test_deploy_rejects_unknown_target_kind(aws, kind: str) -> None:
    res = runner.invoke(build_aws_app(lambda r, p: aws), ["deploy", "x", "--group", "g", "--kind", kind])
    assert res.exit_code != 0 and "auto, thinggroup or thing" in res.output
