"""The CDK install as docs/cdk.md writes it, in a fresh virtualenv with nothing else: the test environment
has every extra, so without this a missing dependency of the app (boto3, once) passes every other test."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import venv
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from .conftest import CDK_DIR, ROOT, STACK

DOC = ROOT / "docs" / "cdk.md"


def documented_install() -> list[str]:
    """The install command docs/cdk.md gives first ("from the repository root `pip install ...`")."""
    found = re.search(r"from the repository root\s+`(pip install [^`]+)`", DOC.read_text())
    assert found, "docs/cdk.md no longer says how to install the CDK app's dependencies"
    return shlex.split(found.group(1))


def test_requirements_file_names_what_the_extra_installs() -> None:
    """cdk/requirements.txt is the documented alternative to the extra: the same packages."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {Requirement(r).name for r in extras["cdk"]}
    assert "edgeinfer" in names, "the app imports edgeinfer.cloud.aws: [cdk] must bring [aws-cloud]"
    names = (names - {"edgeinfer"}) | {Requirement(r).name for r in extras["aws-cloud"]}
    listed = {Requirement(line.split("#")[0]).name for line in (CDK_DIR / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()}
    assert listed == names


@pytest.mark.slow
def test_the_documented_install_synthesises_in_a_fresh_venv(tmp_path: Path) -> None:
    if subprocess.run(["node", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.fail("node is not on PATH: the CDK app needs Node.js >= 20 (make test installs it as root)")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    cmd = documented_install()
    assert cmd[:3] == ["pip", "install", "-e"], cmd
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run([str(python), "-m", *cmd, "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "cdk.out"
    synth = subprocess.run([str(python), "app.py"], cwd=CDK_DIR, capture_output=True, text=True, timeout=900,
                           env={**env, "CDK_OUTDIR": str(out), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
                           check=False)
    assert synth.returncode == 0, f"python app.py after `{' '.join(cmd)}`:\n{synth.stderr[-4000:]}"
    template = json.loads((out / f"{STACK}.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())
