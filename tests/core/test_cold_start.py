"""What a one-shot `edgeinfer run` loads (cold start), and the cold-start bench itself (no timing asserted here:
the figures are bench/bench_cold_start.py's, recorded in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]

RUN_AND_LIST_MODULES = """
import json, sys
sys.argv = ["edgeinfer", "run", "--model", sys.argv[1], "--source", sys.argv[2], "-q"]
from edgeinfer.cli import main
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(sys.modules)))
"""

#: what a device's plain `edgeinfer run` has no use for: the cloud tooling and SDKs behind the other commands,
#: the adapters, cryptography (signed or encrypted packages only), the HTTP/TLS stack (downloads, webhooks) and
#: the status server with prometheus-client (--serve only), the cloud fallback's and the captures' services,
#: clients and answer models (fallback/captures enabled only), the telemetry event models and psutil (health
#: telemetry only: the run's own start time comes from core/proctime.py), and Rich's live display (the "preparing"
#: spinner is drawn on a terminal only)
NOT_ON_THE_RUN_PATH = ("edgeinfer.cli.aws", "edgeinfer.cli.azure", "edgeinfer.cli.greengrass", "edgeinfer.cli.model",
                       "edgeinfer.cli.config_cmd", "edgeinfer.cloud", "edgeinfer.greengrass", "edgeinfer.azure",
                       "edgeinfer.mqtt", "boto3", "botocore", "awscrt", "awsiot", "azure", "cryptography",
                       "http.client", "ssl", "http.server", "prometheus_client", "edgeinfer.core.serve.server",
                       "edgeinfer.cli.serving", "edgeinfer.core.fallback.service", "edgeinfer.core.fallback.client",
                       "edgeinfer.core.fallback.formats", "edgeinfer.core.captures.service",
                       "edgeinfer.core.captures.queue", "edgeinfer.core.captures.uploader",
                       "edgeinfer.core.telemetry.events", "psutil", "rich.live", "rich.status")


def test_a_plain_run_imports_no_cloud_tooling_crypto_or_http(demo_pkgs: tuple[Path, Path],
                                                              demo_media: tuple[Path, Path], tmp_path: Path) -> None:
    image = sorted(demo_media[0].glob("*.png"))[0]
    res = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, str(demo_pkgs[0]), str(image)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    loaded = json.loads(res.stdout.splitlines()[-1])
    assert "edgeinfer.core.session" in loaded and "onnxruntime" in loaded  # it did run
    assert [m for m in loaded if any(m == p or m.startswith(f"{p}.") for p in NOT_ON_THE_RUN_PATH)] == []


def test_the_process_start_is_the_one_psutil_gives() -> None:
    import psutil

    from edgeinfer.core.proctime import process_started_at

    assert abs(process_started_at() - psutil.Process().create_time()) < 0.02


def test_lazy_groups_are_listed_suggested_and_run() -> None:
    res = run_cli("--help", env={"COLUMNS": "200"})
    assert res.returncode == 0
    for group in ("model", "config", "greengrass", "aws", "azure"):
        assert f" {group} " in res.stdout, group
    res = run_cli("azur")
    assert res.returncode == 2 and "Did you mean 'azure'?" in res.stderr
    res = run_cli("config", "defaults")
    assert res.returncode == 0 and "pipeline" in res.stdout


def test_the_cold_start_bench_reports_both_processes(demo_pkgs: tuple[Path, Path]) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_cold_start.py"), "--runs", "1", "--json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    for name in ("bare", "edgeinfer"):
        row = rep[name]
        assert len(row["wall_s"]) == 1 and row["wall_s_median"] > 0 and row["peak_rss_mib_median"] > 0
        assert row["cpu_s_median"] > 0
    assert rep["wall_ratio"] > 0 and isinstance(rep["rss_delta_mib"], float)
    assert set(rep["targets"]) == {"wall_ratio <= 1.5", "rss_delta_mib <= 30"}
