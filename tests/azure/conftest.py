"""Fixtures for the IoT Edge tests.

The module harness runs ``python -m edgeinfer.azure`` (the container's CMD, unmodified azure-iot-device
inside) in its own network namespace, so its hard-coded port 8883 is its own: loopback 8883 and 8443
are piped to Unix sockets of a private TLS Mosquitto and of an HTTPS model server. A fake workload API
answers trust-bundle and sign on a Unix socket (as aziot-edged does), and a test-side hub plays edgeHub
on the ``$iothub/...`` topics.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.cloud.azure import schemas
from tests.azure.broker import MOSQUITTO, Broker, start_broker
from tests.azure.files_server import FileServer
from tests.azure.hub import FakeHub
from tests.azure.workload import FakeWorkload
from tests.conftest import LocalSettings, trusting_operator
from tests.telemetry.pki import Pki, make_pki

HERE = Path(__file__).resolve().parent
# pinned copies of SchemaStore's IoT Edge schemas (Apache-2.0; SOURCE, LICENSE and SHA256SUMS beside them)
SCHEMAS = HERE.parent / "data" / "schemas" / "azure-iot-edge"
DEVICE, MODULE, GENERATION, HUB_HOST = "cam-01", "edgeinfer", "gen-7", "test-hub.azure-devices.net"
FILES_PORT = 8443



@pytest.fixture(autouse=True)
def _operator_allows_the_test_folders(local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    local_settings(trusting_operator(tmp_path_factory.getbasetemp()))

@pytest.fixture(scope="session")
def schema_folder() -> Path:
    """The SchemaStore IoT Edge schemas the repository carries for its tests."""
    folder = schemas.schema_dir(SCHEMAS)
    assert folder is not None, f"{SCHEMAS} lacks {schemas.DEPLOYMENT}"
    return folder


def _unshare_prefix() -> list[str] | None:
    """``unshare`` arguments that give a child its own network namespace here, or None."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    for prefix in (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"]):
        probe = subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="session")
def netns_prefix() -> list[str]:
    pytest.importorskip("azure.iot.device", reason="azure-iot-device not installed (pip install 'edgeinfer[azure]')")
    if not Path(MOSQUITTO).is_file():
        pytest.skip(f"mosquitto not found at {MOSQUITTO}")
    prefix = _unshare_prefix()
    if prefix is None:
        pytest.skip("no network namespace available (needs `unshare --net` as root, or unprivileged user "
                    "namespaces): the SDK's fixed port 8883 cannot be given to a test broker otherwise")
    return prefix


PAHO_PIN = "paho-mqtt>=1.6.1,<2"


def _paho_major(site: str | None = None) -> int:
    code = "import paho.mqtt; print(paho.mqtt.__version__.split('.')[0])"
    env = {**os.environ, "PYTHONPATH": site} if site else None
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    return int(out.stdout.strip() or 0)


@pytest.fixture(scope="session")
def module_site(cache_dir: Path) -> str | None:
    """A PYTHONPATH entry giving the module process paho-mqtt < 2, as in the module image.

    azure-iot-device 2.14 pins paho-mqtt < 2 and fails on 2.x when it disconnects, while the telemetry
    tests need paho-mqtt 2 in the same venv. The module process gets the pinned paho from an overlay:
    $EDGEINFER_TEST_MODULE_SITE, else <cache>/azure-module-site (made once with pip --target)."""
    if site := os.environ.get("EDGEINFER_TEST_MODULE_SITE"):
        return site
    if _paho_major() < 2:
        return None
    site_dir = cache_dir / "azure-module-site"
    if not (site_dir.is_dir() and _paho_major(str(site_dir)) == 1):
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-deps", "--target", str(site_dir), PAHO_PIN], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            pytest.skip(f"the module needs {PAHO_PIN} (azure-iot-device's pin) and pip could not fetch it: "
                        f"{proc.stderr.strip()[-300:]}")
    return str(site_dir)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("azure-pki"))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under 108 bytes: pytest's tmp paths can be longer."""
    path = Path(tempfile.mkdtemp(prefix="ei-az-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def files(pki: Pki) -> Iterator[FileServer]:
    server = FileServer(pki).start()
    yield server
    server.stop()


@dataclass
class EdgeModule:
    """One module process under test and its surroundings."""

    hub: FakeHub
    workload: FakeWorkload
    broker: Broker
    files: FileServer
    proc: subprocess.Popen[bytes]
    log: Path
    state_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Reported properties once the module answers methods (it reports its method names then)."""
        try:
            return self.hub.wait_reported(lambda r: bool(r.get("methods")), timeout_s, "module ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- module log ---\n{self.log_text()[-4000:]}") from None

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:  # the launcher and the module with it: no orphan outlives the test
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)


StartModule = Callable[..., EdgeModule]


@pytest.fixture
def edge_module(netns_prefix: list[str], module_site: str | None, pki: Pki, short_dir: Path, files: FileServer,
                tmp_path: Path) -> Iterator[StartModule]:
    """``start(desired, state_dir=None, version=1) -> EdgeModule``; everything stops at teardown."""
    started: list[EdgeModule] = []
    brokers: list[Broker] = []
    files_sock = files.serve_unix(short_dir / "files.sock")

    def start(desired: dict[str, Any], state_dir: Path | None = None, version: int = 1) -> EdgeModule:
        n = len(started)
        broker, workload, hub = start_peers(short_dir, pki, n, desired, version)
        brokers.append(broker)
        state = state_dir or tmp_path / f"state{n}"
        env = {**os.environ, **edge_environment(workload.uri), "EDGEINFER_STATE_DIR": str(state),
               "SSL_CERT_FILE": str(pki.ca), "PYTHONUNBUFFERED": "1"}
        if module_site:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [module_site, env.get("PYTHONPATH")]))
        log = tmp_path / f"module{n}.log"
        cmd = [*netns_prefix, sys.executable, str(HERE / "netns_launch.py"),
               "--forward", f"8883={broker.tls_socket}", "--forward", f"{FILES_PORT}={files_sock}",
               "--", sys.executable, "-m", "edgeinfer.azure"]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        module = EdgeModule(hub, workload, broker, files, proc, log, state, env)
        started.append(module)
        return module

    yield start
    stop_modules(started, brokers)


def start_peers(short_dir: Path, pki: Pki, n: int, desired: dict[str, Any],
                version: int) -> tuple[Broker, FakeWorkload, FakeHub]:
    """What a module talks to, the ``n``-th time in a test: TLS Mosquitto, the workload API, the hub."""
    broker = start_broker(short_dir / f"b{n}", pki)
    workload = FakeWorkload(short_dir / f"workload{n}.sock", pki.ca.read_text(), MODULE, GENERATION).start()
    hub = FakeHub("127.0.0.1", broker.port, DEVICE, MODULE, desired=desired, desired_version=version).start()
    return broker, workload, hub


def edge_environment(workload_uri: str) -> dict[str, str]:
    """The variables edgeAgent sets for a module (what create_from_edge_environment reads)."""
    return {"IOTEDGE_IOTHUBHOSTNAME": HUB_HOST, "IOTEDGE_DEVICEID": DEVICE, "IOTEDGE_MODULEID": MODULE,
            "IOTEDGE_GATEWAYHOSTNAME": "localhost", "IOTEDGE_MODULEGENERATIONID": GENERATION,
            "IOTEDGE_WORKLOADURI": workload_uri, "IOTEDGE_APIVERSION": "2019-01-30", "EDGEINFER_LOG_LEVEL": "INFO"}


def stop_modules(started: Sequence[Any], brokers: Sequence[Broker]) -> None:
    for m in started:
        m.stop()
        m.hub.stop()
        m.workload.stop()
    for b in brokers:
        b.stop()


def model_url(path: str) -> str:
    """How the module (inside its namespace) reaches the test's file server."""
    return f"https://localhost:{FILES_PORT}{path}"
