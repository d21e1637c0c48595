"""`edgeinfer azure manifest --model-package` reads the model reference from the package and refuses one its
optimize agreement report rejected, unless --force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from edgeinfer.cli.azure import azure_app
from edgeinfer.core.errors import ModelError
from edgeinfer.core.modelpkg import sha256_file

from ..core.optimize_frames import rejected_copy

URI = "https://models.example.com/faces.zip"


def _zip(folder: Path) -> Path:
    return Path(shutil.make_archive(str(folder), "zip", folder))


def test_manifest_refuses_a_rejected_package_unless_forced(demo_pkgs, tmp_path: Path) -> None:
    package = _zip(rejected_copy(demo_pkgs[0], tmp_path / "rejected"))
    out = tmp_path / "deployment.json"
    res = CliRunner().invoke(azure_app, ["manifest", "--out", str(out), "--model-package", str(package),
                                         "--model-uri", URI])
    assert isinstance(res.exception, ModelError) and "rejected by its agreement report" in str(res.exception)
    assert not out.exists()
    res = CliRunner().invoke(azure_app, ["manifest", "--out", str(out), "--model-package", str(package),
                                         "--model-uri", URI, "--force"])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    model = doc["modulesContent"]["edgeinfer"]["properties.desired"]["model"]
    assert {k: model[k] for k in ("name", "version", "uri", "sha256")} == {
        "name": "blazeface-full-range", "version": "1.0.0", "uri": URI, "sha256": sha256_file(package)}


def test_an_accepted_package_needs_only_its_uri(demo_pkgs, tmp_path: Path) -> None:
    package = _zip(rejected_copy(demo_pkgs[0], tmp_path / "ok", "accepted"))
    out = tmp_path / "deployment.json"
    res = CliRunner().invoke(azure_app, ["manifest", "--out", str(out), "--model-package", str(package)])
    assert res.exception is not None and "--model-uri" in str(res.exception)
    res = CliRunner().invoke(azure_app, ["manifest", "--out", str(out), "--model-package", str(package),
                                         "--model-uri", URI])
    assert res.exit_code == 0, res.output
