"""`edgeinfer aws register` refuses a package its optimize agreement report rejected, unless forced (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeinfer.cloud.aws import registry
from edgeinfer.core.errors import ModelError

from ..core.optimize_frames import rejected_copy
from .conftest import BUCKET


def test_register_refuses_a_rejected_package_unless_forced(aws, demo_pkgs, tmp_path: Path) -> None:
    rejected = rejected_copy(demo_pkgs[0], tmp_path / "rejected")
    with pytest.raises(ModelError, match=r"was rejected by its agreement report \(agreement 0.4\)") as err:
        registry.register(aws, rejected, "faces", BUCKET)
    assert "--force" in str(err.value)
    assert aws.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # nothing uploaded
    forced = registry.register(aws, rejected, "faces", BUCKET, force=True)
    assert forced.meta("optimize_verdict") == "rejected" and forced.meta("optimize_method") == "onnx-int8"


def test_register_takes_accepted_and_plain_packages(aws, demo_pkgs, tmp_path: Path) -> None:
    accepted = registry.register(aws, rejected_copy(demo_pkgs[0], tmp_path / "ok", "accepted"), "faces", BUCKET)
    assert accepted.meta("optimize_verdict") == "accepted" and accepted.meta("optimized_from")
    assert registry.register(aws, demo_pkgs[0], "faces", BUCKET).meta("optimize_verdict") is None


def test_the_cli_refuses_with_one_line_and_exit_2(aws, demo_pkgs, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgeinfer.cli.aws import build_aws_app

    app = build_aws_app(lambda region, profile: aws)
    rejected = rejected_copy(demo_pkgs[0], tmp_path / "rejected")
    res = CliRunner().invoke(app, ["register", str(rejected), "--group", "faces", "--bucket", BUCKET])
    assert res.exit_code != 0 and isinstance(res.exception, ModelError)
    res = CliRunner().invoke(app, ["register", str(rejected), "--group", "faces", "--bucket", BUCKET, "--force"])
    assert res.exit_code == 0, res.output
