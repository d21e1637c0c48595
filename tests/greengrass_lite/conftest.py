"""The real-nucleus tier: Greengrass Lite built by scripts/build-greengrass-lite.sh into the cache.

Skips, saying why, when there is no build (run the script), or when this machine cannot host the daemons
without systemd (root for network/mount namespaces and cgroups, a cgroup hierarchy to write, unshare,
mosquitto)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalSettings, trusting_operator

from .launch import cgroup_hierarchies
from .nucleus import LiteCore

THING = "edge-cam-lite"
DAEMON_BINARIES = ("ggconfigd", "ggpubsubd", "ggipcd", "iotcored", "recipe-runner")


def lite_bin() -> Path:
    return Path(os.environ["EDGEINFER_CACHE_DIR"]) / "greengrass-lite" / "bin"


def why_not() -> str | None:
    bin_dir = lite_bin()
    if missing := [b for b in DAEMON_BINARIES if not (bin_dir / b).is_file()]:
        return (f"Greengrass Lite is not built ({', '.join(missing)} missing in {bin_dir}): run "
                "scripts/build-greengrass-lite.sh SNAPSHOT_DIR (Lite's source and the dependencies its fc_deps.json "
                "pins; see the script's header)")
    if os.geteuid() != 0:
        return "the Greengrass Lite tier needs root (network and mount namespaces, the components' cgroups)"
    if not cgroup_hierarchies():
        return "no cgroup hierarchy to put components in (Lite authenticates components by their cgroup)"
    for tool in ("unshare", "mosquitto", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/bootstrap.sh test installs mosquitto; util-linux, iproute2)"
    return None


@pytest.fixture(autouse=True)
def _operator_allows_the_test_folders(local_settings: LocalSettings, tmp_path_factory: pytest.TempPathFactory) -> None:
    local_settings(trusting_operator(tmp_path_factory.getbasetemp()))


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[LiteCore]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    core = LiteCore(lite_bin(), tmp_path, THING)
    yield core
    core.stop()
