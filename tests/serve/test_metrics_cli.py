"""`edgeinfer run --serve`: /metrics read back with prometheus_client's own parser and checked against the
summary.json of the same run; the endpoints' guards (Host header, read only); the section is local-only and a
plain run does not load the server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from edgeinfer.core import config as cfgmod
from edgeinfer.core import remote
from edgeinfer.core.errors import ConfigError

from .conftest import get, get_json

FRAMES = 24


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture(scope="module")
def served_run(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
               tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real `edgeinfer run --serve` over the demo images (faces), a rule and file telemetry, lingering after
    the run so the test can scrape the final figures; yields (url, summary, process)."""
    cfg = {"source": {"loop": True},
           "rules": [{"name": "face-seen", "when": {"label": "face", "min_score": 0.5}, "over": {"frames": 1},
                      "hysteresis": {"clear_frames": 1}}]}
    yield from served(tmp_path_factory.mktemp("served"), cfg, ["--model", str(demo_pkgs[0]), "--source",
                                                               str(demo_media[0]), "--max-frames", str(FRAMES)])


def served(tmp: Path, cfg: dict[str, Any], args: list[str]) -> Any:
    """Run `edgeinfer run --serve ... ARGS` with ``cfg`` (and file telemetry) until it has ended and lingers;
    yields (url, summary, process), then stops it."""
    (tmp / "cfg.yaml").write_text(yaml.safe_dump({"serve": {"linger_s": 120}, **cfg}))
    exe = Path(sys.executable).with_name("edgeinfer")
    proc = subprocess.Popen([str(exe), "run", "--serve", "127.0.0.1:0", "--config", str(tmp / "cfg.yaml"), *args,
                             "--out", str(tmp / "out"), "-q",
                             "--telemetry", f"file:{tmp / 'events.jsonl'}", "--telemetry-mode", "results",
                             "--state-dir", str(tmp / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    url, lines = None, []
    assert proc.stderr is not None
    for line in proc.stderr:  # the CLI says where it serves, then that the run ended (summary.json written)
        lines.append(line)
        if url is None and (m := re.search(r"status page: (http://127\.0\.0\.1:\d+)/", line)):
            url = m.group(1)
        if "run ended; serving" in line:
            break
    else:
        proc.wait(10)
        pytest.fail("the run did not linger: " + "".join(lines))
    assert url, "".join(lines)
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    yield url, summary, proc
    proc.terminate()
    proc.wait(30)


def test_metrics_match_the_runs_summary(served_run: Any) -> None:
    url, summary, _ = served_run
    code, body, headers = get(url + "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=")
    m = _samples(body.decode())
    assert summary["frames"] == FRAMES
    assert m[("edgeinfer_frames_total", ())] == summary["frames"]
    assert m[("edgeinfer_bad_frames_total", ())] == summary["bad_frames"]
    assert m[("edgeinfer_dropped_frames_total", ())] == summary["dropped"]
    assert summary["detections"], "the demo images hold faces"
    for label, n in summary["detections"].items():
        assert m[("edgeinfer_detections_total", (("label", label),))] == n
    for stage in ("preprocess", "infer", "decode", "sinks", "total"):
        s = summary["stages_ms"][stage]
        key = (("stage", stage),)
        count = m[("edgeinfer_stage_latency_seconds_count", key)]
        assert count == s["n"] == FRAMES, stage
        assert m[("edgeinfer_stage_latency_seconds_bucket", (("le", "+Inf"), ("stage", stage)))] == count
        assert m[("edgeinfer_stage_latency_seconds_sum", key)] / count == pytest.approx(s["mean"] / 1e3, abs=2e-6)
        buckets = sorted((float(k[1][0][1]), v) for k, v in m.items()
                         if k[0] == "edgeinfer_stage_latency_seconds_bucket" and dict(k[1])["stage"] == stage)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets), "buckets are cumulative"
    model = summary["model"]
    info = {k: v for k, v in m.items() if k[0] == "edgeinfer_model_info"}
    assert list(info) == [("edgeinfer_model_info", tuple(sorted({"name": model["name"], "version": model["version"],
                                                                 "sha256": model["sha256"],
                                                                 "task": model["task"]}.items())))]
    b = summary["backend"]
    assert m[("edgeinfer_backend_info", (("backend", b["backend"]), ("device", b["device"]),
                                         ("precision", b["precision"])))] == 1
    assert m[("edgeinfer_backend_degraded", ())] == int(b["degraded"])
    fired = m[("edgeinfer_rule_firings_total", (("rule", "face-seen"), ("severity", "warning")))]
    assert fired >= 1, "the demo images' faces fire the rule"
    tel = summary["telemetry"]
    assert m[("edgeinfer_telemetry_sent_events_total", ())] == tel["sent_events"]
    assert m[("edgeinfer_telemetry_delivery_latency_seconds_count", ())] == tel["sent_events"]
    assert m[("edgeinfer_run_state", (("state", "stopped"),))] == 1
    assert m[("edgeinfer_healthy", ())] == 0 and m[("edgeinfer_ready", ())] == 0
    assert m[("process_resident_memory_bytes", ())] > 0


def test_health_endpoints_after_the_run_and_the_last_frame_stays(served_run: Any) -> None:
    url, _, _ = served_run
    for path in ("/healthz", "/readyz"):
        code, doc = get_json(url + path)
        assert code == 503 and doc == {"ok": False, "state": "stopped", "reason": "the run is stopped"}
    code, body, headers = get(url + "/snapshot.jpg")
    assert code == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    code, doc = get_json(url + "/api/status")
    assert code == 200 and doc["stats"]["frames"] == FRAMES and doc["alerts"][0]["rule"] == "face-seen"


def test_guards_host_header_methods_and_headers(served_run: Any) -> None:
    url, _, _ = served_run
    code, _, _ = get(url + "/", headers={"Host": "attacker.example:9464"})
    assert code == 421, "a DNS-rebound name must not read the device"
    code, body, headers = get(url + "/", headers={"Host": "localhost:9464"})
    assert code == 200 and b"<title>edgeinfer status</title>" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in \
        headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    req = urllib.request.Request(url + "/metrics", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405
    assert get(url + "/nope")[0] == 404


def test_serve_is_local_only() -> None:
    base = cfgmod.validate({})
    assert base.serve.enabled is None and base.serve.listen == "127.0.0.1:9464"
    assert "serve" not in cfgmod.defaults_json(), "the recipe/twin defaults must not carry it"
    for doc in ({"serve": {"listen": "0.0.0.0:9464"}}, {"serve": {"enabled": True}},
                {"serve": {"allowed_hosts": ["evil.example"]}}):
        with pytest.raises(ConfigError, match="serve is a local setting"):
            remote.resolve(doc, {})
    local = {"serve": {"listen": "0.0.0.0:9464", "enabled": True}}  # the local operator may
    assert remote.resolve({"model": {"score_threshold": 0.6}}, local).serve.listen == "0.0.0.0:9464"
    for bad in ("9464", "localhost", "::1:9464", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match=r"serve\.listen"):
            cfgmod.validate({"serve": {"listen": bad}})
    assert cfgmod.validate({"serve": {"listen": "[::1]:0"}}).serve.address() == ("::1", 0)


def test_every_metric_served_is_documented_and_the_documented_settings_validate(served_run: Any) -> None:
    url, _, _ = served_run
    doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    served = {fam.name for fam in text_string_to_metric_families(get(url + "/metrics")[1].decode())
              if fam.name.startswith("edgeinfer_")}
    assert served and not [n for n in sorted(served) if n not in doc], "undocumented metrics"
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "/etc/edgeinfer/local.yaml" in b)
    cfg = cfgmod.validate(yaml.safe_load(block), "docs/observability.md")
    assert cfg.serve.listen == "127.0.0.1:9464" and cfg.serve.stall_s == 300


def test_each_stream_has_its_own_series(demo_pkgs: tuple[Path, Path], demo_media: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    """Three streams through one model: each stream's frames, state and detections on /metrics are its own."""
    faces = str(demo_media[0])
    args = ["--model", str(demo_pkgs[0]), "--source", f"a={faces}", "--source", f"b={faces}",
            "--source", "c=synthetic:64x64:5"]
    run = served(tmp_path, {}, args)
    url, summary, _ = next(run)
    try:
        m = _samples(get(url + "/metrics")[1].decode())
        n = len(list(demo_media[0].glob("*.png")))
        assert {sid: st["frames"] for sid, st in summary["streams"].items()} == {"a": n, "b": n, "c": 5}
        for sid, st in summary["streams"].items():
            assert m[("edgeinfer_stream_frames_total", (("stream", sid),))] == st["frames"]
            assert m[("edgeinfer_stream_state", (("state", "finished"), ("stream", sid)))] == 1
            for label, count in st["detections"].items():
                assert m[("edgeinfer_stream_detections_total", (("label", label), ("stream", sid)))] == count
        assert summary["streams"]["a"]["detections"] == summary["streams"]["b"]["detections"] != {}
        assert summary["streams"]["c"]["detections"] == {}  # no face in synthetic shapes
    finally:
        next(run, None)
