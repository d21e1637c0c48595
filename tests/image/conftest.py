"""Fixtures for the module image tier: the amd64 image built from the repository and run for real.

No container registry is reachable here and there is no Docker daemon: the base is made from Debian
bookworm's packages with mmdebstrap (Debian's Python 3.11, ca-certificates, and this machine's extra CA
certificates for a TLS-intercepting proxy), imported with buildah, and the module image is built from
``modules/edgeinfer/Dockerfile.amd64`` unchanged but for ``--build-arg BASE_IMAGE``. Build and run use
``--isolation chroot`` (the default OCI runtime cannot set its rlimits and cgroups in this sandbox), which
shares the caller's network namespace: the container runs inside the test's own ``unshare --net``
namespace whose loopback 8883 is piped to the IoT Edge harness's TLS Mosquitto (tests/azure).

Cached between runs: the base image (tagged by a hash of what goes into it), the build's layers
(``--layers``: a warm rebuild takes seconds) and pip's wheels in ``.cache/image-pip``. Working containers
are removed by id; a rebuilt image replaces the previous one under the same tag.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.azure.broker import Broker
from tests.azure.conftest import edge_environment, netns_prefix, pki, short_dir, start_peers, stop_modules
from tests.azure.hub import FakeHub
from tests.azure.workload import FakeWorkload
from tests.telemetry.pki import Pki

__all__ = ["netns_prefix", "pki", "short_dir"]  # the harness fixtures, shared with tests/azure

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "modules" / "edgeinfer" / "Dockerfile.amd64"
NETNS_LAUNCH = ROOT / "tests" / "azure" / "netns_launch.py"
PIP_CACHE = Path(os.environ.get("EDGEINFER_CACHE_DIR") or ROOT / ".cache") / "image-pip"
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
BASE_REPO, IMAGE_TAG = "localhost/edgeinfer-test-base", "localhost/edgeinfer-test:amd64"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
SUITE = "bookworm"
SOURCES = [f"deb http://deb.debian.org/debian {SUITE} main", f"deb http://deb.debian.org/debian {SUITE}-updates main",
           f"deb http://deb.debian.org/debian-security {SUITE}-security main"]
# the extra CAs, then pip told to use the system bundle (it would use certifi's otherwise)
HOOKS = ['cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true',
         'chroot "$1" update-ca-certificates',
         "printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > \"$1/etc/pip.conf\""]
UID = 10001
STATE_IN_IMAGE = "/var/lib/edgeinfer/state"
MODEL_IN_IMAGE, FRAMES_IN_IMAGE = "/models/demo", "/frames"
LOCAL_SETTINGS_IN_IMAGE = "/etc/edgeinfer/local.yaml"  # the documented default: EDGEINFER_LOCAL_CONFIG unset


def run(*cmd: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def buildah() -> str:
    if os.geteuid() != 0:
        pytest.skip("building and running the module image with buildah needs root here (rootless buildah needs "
                    "/etc/subuid ranges and user namespaces); `make test` runs as root")
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install buildah mmdebstrap; "
                    "scripts/bootstrap.sh test installs them as root)")
    return shutil.which("buildah") or "buildah"


def image_exists(ref: str) -> bool:
    return run("buildah", "inspect", "--type", "image", ref, check=False).returncode == 0


def inspect_image(ref: str) -> dict[str, Any]:
    return json.loads(run("buildah", "inspect", "--type", "image", ref).stdout)


def _base_digest() -> str:
    h = hashlib.sha256(json.dumps([SUITE, BASE_PACKAGES, SOURCES, HOOKS]).encode())
    for ca in sorted(EXTRA_CAS.glob("*.crt")):
        h.update(ca.name.encode() + ca.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def base_image(buildah: str) -> str:
    """Debian bookworm minbase + Python 3.11, made once (~30 s) and kept, tagged by what went into it."""
    ref = f"{BASE_REPO}:{SUITE}-{_base_digest()}"
    if image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="ei-base-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        hooks = [arg for hook in HOOKS for arg in ("--customize-hook", hook)]
        started = time.monotonic()
        run("mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", *hooks, SUITE, str(rootfs), *SOURCES)
        ctr = run("buildah", "from", "scratch").stdout.strip()
        try:
            run("buildah", "add", ctr, str(rootfs), "/")
            run("buildah", "commit", "--rm", ctr, ref)
        except BaseException:
            run("buildah", "rm", ctr, check=False)
            raise
        log.info("base image %s made in %.0fs", ref, time.monotonic() - started)
    for image in json.loads(run("buildah", "images", "--json").stdout or "[]"):
        for name in image.get("names") or []:
            if name.startswith(BASE_REPO + ":") and name != ref:  # the base of an earlier CA set or package list
                run("buildah", "rmi", name, check=False)
    return ref


@dataclass
class Image:
    id: str
    ref: str
    build_s: float
    config: dict[str, Any]  # the Docker image config (HEALTHCHECK lives only in the Docker format)

    def env(self, name: str) -> str | None:
        return next((kv.split("=", 1)[1] for kv in self.config.get("Env") or [] if kv.startswith(name + "=")), None)


def build_image(base: str, tag: str = IMAGE_TAG, context: Path = ROOT) -> Image:
    """``buildah bud`` of the amd64 Dockerfile from the repository root (or a copy of it), as a user builds it."""
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    before = inspect_image(tag)["FromImageID"] if image_exists(tag) else None
    with tempfile.TemporaryDirectory(prefix="ei-build-") as tmp:
        iid = Path(tmp) / "iid"
        started = time.monotonic()
        run("buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker", "--iidfile", str(iid),
            "-f", str(context / DOCKERFILE.relative_to(ROOT)), "--build-arg", f"BASE_IMAGE={base}",
            "--build-arg", "PIP_CACHE_DIR=/pip-cache", "-v", f"{PIP_CACHE}:/pip-cache",
            "-t", tag, str(context), timeout=900)
        build_s = time.monotonic() - started
        image_id = iid.read_text().strip().removeprefix("sha256:")
    if before and before != image_id:  # the image this build replaced (its shared layers stay cached)
        run("buildah", "rmi", before, check=False)
    info = inspect_image(image_id)
    log.info("module image %s built in %.1fs", image_id[:12], build_s)
    return Image(image_id, tag, build_s, info["Docker"]["config"])


@pytest.fixture(scope="session")
def module_image(base_image: str) -> Image:
    return build_image(base_image)


@pytest.fixture
def container(module_image: Image) -> Iterator[Callable[[], str]]:
    """``new() -> container id``: working containers of the module image, removed by id at teardown."""
    made: list[str] = []

    def new() -> str:
        ctr = run("buildah", "from", "--pull-never", "--name", f"edgeinfer-test-{uuid.uuid4().hex[:8]}",
                  module_image.id).stdout.strip()
        made.append(ctr)
        return ctr

    yield new
    for ctr in made:
        run("buildah", "rm", ctr, check=False)


def in_container(ctr: str, *cmd: str, env: dict[str, str] | None = None, mounts: list[str] | None = None,
                 timeout: float = 60, netns_of: int | None = None) -> subprocess.CompletedProcess[str]:
    """One command in the container as its image's user (``buildah run`` keeps USER, ENV and WORKDIR);
    ``netns_of``: in that process's network namespace (chroot isolation has none of its own)."""
    args = [*(["nsenter", f"--net=/proc/{netns_of}/ns/net"] if netns_of else []), "buildah", "run", "--isolation",
            "chroot"]
    for k, v in (env or {}).items():
        args += ["--env", f"{k}={v}"]
    for m in mounts or []:
        args += ["--volume", m]
    return run(*args, ctr, "--", *cmd, timeout=timeout, check=False)


@dataclass
class ImageModule:
    """The module running in a container of the image, and its harness."""

    ctr: str
    hub: FakeHub
    workload: FakeWorkload
    broker: Broker
    proc: subprocess.Popen[bytes]
    log: Path
    state_dir: Path  # the host side of the state bind mount
    mounts: list[str] = field(default_factory=list)
    health_cmd: list[str] = field(default_factory=list)  # the image's HEALTHCHECK CMD

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        try:
            return self.hub.wait_reported(lambda r: bool(r.get("methods")), timeout_s, "module ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- module log ---\n{self.log_text()[-4000:]}") from None

    def healthcheck(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command in the same container and network namespace, as the engine runs it
        (its /healthz is on the container's loopback)."""
        return in_container(self.ctr, *self.health_cmd, env=env, mounts=self.mounts, netns_of=self.module_pid())

    def module_pid(self) -> int | None:
        """The container's process (``python -m edgeinfer.azure``) under the launcher and ``buildah run``."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
        for pid in parents:
            ancestor = parents.get(pid)
            while ancestor and ancestor != self.proc.pid:
                ancestor = parents.get(ancestor)
            if ancestor == self.proc.pid:
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"edgeinfer.azure" in argv and b"buildah" not in argv[0]:
                    return pid
        return None

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM to the container's process, as the engine's stop sends it (``buildah run`` itself would
        answer SIGTERM with SIGKILL to its child); SIGKILL to all after ``timeout_s``."""
        if self.proc.poll() is None:
            pid = self.module_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:  # the launcher, buildah and the module with them
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)


StartInImage = Callable[..., ImageModule]


def local_settings_file(folder: Path) -> Path:
    """The operator's settings as a device would hold them: the mounted model and frames folders only."""
    path = folder / "local.yaml"
    path.write_text(yaml.safe_dump({"remote": {"model_dirs": [MODEL_IN_IMAGE], "source_dirs": [FRAMES_IN_IMAGE]}}))
    path.chmod(0o644)
    return path


@pytest.fixture
def module_in_image(netns_prefix: list[str], pki: Pki, short_dir: Path, module_image: Image,
                    container: Callable[[], str], demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                    tmp_path: Path) -> Iterator[StartInImage]:
    """``start(desired, state_dir=None, version=1) -> ImageModule``: the image's CMD in a fresh container.

    Mounts, as an IoT Edge deployment's createOptions would: the state folder (a host folder owned by
    uid 10001 standing in for the volume) at the image's EDGEINFER_STATE_DIR, the local settings file,
    the demo model and frames read-only, the workload socket's folder. Environment: the IOTEDGE_*
    variables edgeAgent sets. Desired properties name the paths inside the container."""
    assert module_image.env("EDGEINFER_STATE_DIR") == STATE_IN_IMAGE
    settings = local_settings_file(tmp_path)
    started: list[ImageModule] = []
    brokers: list[Broker] = []

    def start(desired: dict[str, Any], state_dir: Path | None = None, version: int = 1) -> ImageModule:
        n = len(started)
        broker, workload, hub = start_peers(short_dir, pki, n, desired, version)
        brokers.append(broker)
        workload.socket_path.chmod(0o666)  # the module connects as uid 10001, as to aziot-edged's socket
        state = state_dir or tmp_path / f"state{n}"
        state.mkdir(mode=0o700, exist_ok=True)
        os.chown(state, UID, UID)
        env = edge_environment(workload.uri)
        mounts = [f"{state}:{STATE_IN_IMAGE}", f"{settings}:{LOCAL_SETTINGS_IN_IMAGE}:ro",
                  f"{demo_pkgs[0]}:{MODEL_IN_IMAGE}:ro", f"{demo_media[0]}:{FRAMES_IN_IMAGE}:ro",
                  f"{short_dir}:{short_dir}"]
        ctr = container()
        args = ["buildah", "run", "--isolation", "chroot"]
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        for m in mounts:
            args += ["--volume", m]
        log_path = tmp_path / f"module{n}.log"
        cmd = [*netns_prefix, sys.executable, str(NETNS_LAUNCH), "--forward", f"8883={broker.tls_socket}",
               "--", *args, ctr, "--", *module_image.config["Cmd"]]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        health = module_image.config["Healthcheck"]["Test"]
        assert health[0] == "CMD", health
        module = ImageModule(ctr, hub, workload, broker, proc, log_path, state, mounts, health_cmd=health[1:])
        started.append(module)
        return module

    yield start
    stop_modules(started, brokers)


def desired_in_image(**extra: Any) -> dict[str, Any]:
    """Desired properties naming the model and frames where the container sees them."""
    doc: dict[str, Any] = {
        "model": {"path": MODEL_IN_IMAGE},
        "source": {"uri": FRAMES_IN_IMAGE, "loop": True, "fps": 8},
        "telemetry": {"mode": "results", "window_s": 1, "health_interval_s": 1},
        "output": {"print_detections": False},
    }
    doc.update(extra)
    return doc
