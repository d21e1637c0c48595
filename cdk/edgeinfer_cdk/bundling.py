"""The rollout Lambda's code asset, built at synth time from the project itself.

The asset holds the project's ``edgeinfer`` package (copied from ``components/edgeinfer``), the
Lambda's own ``rollout_lambda`` package, and edgeinfer's runtime dependencies installed by pip as
wheels for the Lambda's platform (Amazon Linux 2023, the runtime's Python and architecture). The
dependency list is read from the installed edgeinfer's metadata, i.e. from pyproject.toml, minus
what only a device or the CLI uses. The asset hash is the hash of this output, so any change to
the project's code or its resolved dependencies ships a new Lambda version.

Bundling runs locally (no Docker): pip needs to reach a package index at synth time.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parents[1]
SOURCE = REPO / "components" / "edgeinfer"
HANDLER_PACKAGE = PACKAGE_DIR / "rollout_lambda"
HANDLER = "rollout_lambda.handler.handle"
#: Base dependencies the Lambda does not need, and why (the import test in tests/cdk proves the rest suffice).
NOT_BUNDLED = {
    "onnxruntime": "only a bare model file in the registry needs it (import); 59 MB of the 250 MB limit",
    "typer": "CLI only", "rich": "CLI only", "psutil": "device health telemetry only",
    "opencv-python-headless": "frames and annotation on devices; manifests and packaging import it lazily (87 MB)",
}
#: From the ``aws-cloud`` extra: the control-plane SDK (``aws`` holds the device side).
FROM_AWS_EXTRA = ("boto3",)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name(requirement: str) -> str:
    m = _NAME.match(requirement)
    return m.group(1).lower().replace("_", "-") if m else ""


def lambda_requirements(dist: str = "edgeinfer") -> list[str]:
    """edgeinfer's base requirements (minus NOT_BUNDLED) + the AWS SDK from its ``aws-cloud`` extra."""
    try:
        reqs = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError("edgeinfer is not installed in this environment: pip install -e '.[cdk]' from the "
                           "repository root") from exc
    base = [r for r in reqs if ";" not in r and _name(r) not in NOT_BUNDLED]
    aws = [r.split(";")[0].strip() for r in reqs if 'extra == "aws-cloud"' in r and _name(r) in FROM_AWS_EXTRA]
    return base + aws


def pip_platforms(architecture: lambda_.Architecture) -> list[str]:
    machine = "aarch64" if architecture.name == lambda_.Architecture.ARM_64.name else "x86_64"
    # Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34)
    return [f"manylinux_2_34_{machine}", f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


@jsii.implements(ILocalBundling)
class _LocalBundler:
    def __init__(self, python_version: str, platforms: list[str], requirements: list[str]) -> None:
        self._python_version = python_version
        self._platforms = platforms
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:  # jsii passes the options positionally
        out = Path(output_dir)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(out), "--implementation", "cp", "--python-version", self._python_version,
               "--only-binary=:all:", *[a for p in self._platforms for a in ("--platform", p)], *self._requirements]
        log.info("bundling the rollout Lambda: %s", " ".join(self._requirements))
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not fetch the rollout Lambda's dependencies for Python "
                               f"{self._python_version} {self._platforms[0]}:\n{done.stderr[-2000:]}\n"
                               "synth needs a package index (PyPI or a mirror pip is configured for)")
        shutil.copytree(SOURCE, out / "edgeinfer", ignore=IGNORE)
        shutil.copytree(HANDLER_PACKAGE, out / "rollout_lambda", ignore=IGNORE)
        return True  # never falls back to Docker: a failure above raises with pip's own message


def rollout_code(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> lambda_.Code:
    python_version = runtime.name.removeprefix("python")
    bundler = _LocalBundler(python_version, pip_platforms(architecture), lambda_requirements())
    return lambda_.Code.from_asset(
        str(SOURCE), asset_hash_type=AssetHashType.OUTPUT, exclude=["__pycache__", "*.pyc"],
        bundling=BundlingOptions(
            # required by the API; unused, since local bundling always succeeds or raises
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
            local=bundler))
