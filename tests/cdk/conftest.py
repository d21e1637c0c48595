"""CDK app fixtures: ``cdk/`` on the import path, and ONE synth of the real app per test session.

The synth runs ``python app.py`` from ``cdk/`` exactly as a user (or ``cdk synth``) would, with
CDK_OUTDIR pointing at a temp folder; cdk-nag's AwsSolutions checks run inside it and fail it on any
unacknowledged finding. Tests then read the cloud assembly it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cfn import Synth

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "cdk"
STACK = "edgeinfer-fleet"
if str(CDK_DIR) not in sys.path:
    sys.path.insert(0, str(CDK_DIR))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

NEEDS_CDK = "aws-cdk-lib / cdk-nag are not installed (pip install -e '.[cdk]'); the CDK tests synthesise the app"


def require_cdk() -> None:
    """Skip the calling module when aws_cdk cannot be imported; any other failure (e.g. no node) is an error."""
    pytest.importorskip("aws_cdk", reason=NEEDS_CDK)
    pytest.importorskip("cdk_nag", reason=NEEDS_CDK)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    require_cdk()
    out = tmp_path_factory.mktemp("cdk.out")
    done = subprocess.run([sys.executable, "app.py"], cwd=CDK_DIR, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CDK_OUTDIR": str(out)}, check=False)
    assert done.returncode == 0, f"python app.py failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    template = json.loads((out / f"{STACK}.template.json").read_text())
    yield Synth(template=template, outdir=out, stack=STACK)
    shutil.rmtree(out, ignore_errors=True)  # the Lambda asset alone is ~180 MB
