"""Shared test fixtures. Area-specific fixtures live in each folder's conftest.py."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Downloaded/converted models are shared by all tests and kept between runs (the Makefile sets the same).
os.environ.setdefault("EDGEINFER_CACHE_DIR", str(ROOT / ".cache"))


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own state dir and no local settings file (this machine's /etc/edgeinfer/local.yaml
    never leaks in); the model cache stays shared."""
    monkeypatch.setenv("EDGEINFER_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("EDGEINFER_LOCAL_CONFIG", str(tmp_path_factory.mktemp("etc") / "local.yaml"))


LocalSettings = Callable[[dict[str, Any]], Path]


@pytest.fixture
def local_settings() -> LocalSettings:
    """``write(doc)``: the device's local settings file ($EDGEINFER_LOCAL_CONFIG) becomes ``doc``."""

    def write(doc: dict[str, Any]) -> Path:
        path = Path(os.environ["EDGEINFER_LOCAL_CONFIG"])
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o644)  # whatever the umask: a file others may write is refused
        return path

    return write


def trusting_operator(tmp_root: Path) -> dict[str, Any]:
    """Local settings that let a deployment name this test run's folders and the test servers on loopback:
    for the tests of what adapters do with a configuration, not of what they refuse."""
    dirs = [str(ROOT / ".cache"), str(tmp_root), tempfile.gettempdir()]
    return {"remote": {"model_dirs": dirs, "source_dirs": dirs, "source_hosts": ["127.0.0.1", "localhost"],
                       "webhook_hosts": ["127.0.0.1", "localhost"], "telemetry_hosts": ["127.0.0.1", "localhost"],
                       "model_hosts": ["127.0.0.1", "localhost"], "model_http": True}}


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ["EDGEINFER_CACHE_DIR"])


@pytest.fixture(scope="session")
def demo_pkgs(cache_dir: Path) -> tuple[Path, Path]:
    """The real BlazeFace full-range packages (ONNX, TFLite), built once into the shared cache."""
    from edgeinfer.core.demo import demo_packages

    return demo_packages(cache_dir)


@pytest.fixture(scope="session")
def demo_media(cache_dir: Path) -> tuple[Path, Path]:
    """(folder of sample images, short MJPG clip)."""
    from edgeinfer.core.demo import demo_frames

    return demo_frames(cache_dir)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the installed `edgeinfer` console script as a user would."""
    import sys

    exe = Path(sys.executable).with_name("edgeinfer")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
