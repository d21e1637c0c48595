"""What serving costs the run: throughput with and without the device's HTTP endpoints while Prometheus scrapes
/metrics every 5 s and the status page is open, in the same process, alternating.

    .venv/bin/python bench/bench_serve.py [--frames 1500] [--rounds 5] [--scrape-s 5] [--json]

Each case runs a RunSession over ``synthetic:640x480:N`` (unpaced: as fast as the pipeline goes, so any CPU the
serving side takes shows as lost throughput) with the demo model. The served case adds what `--serve` adds: the
Recorder sink in the frame path and the server, with a scraper thread (GET /metrics every ``--scrape-s``) and a
page viewer thread making the page's own requests (GET /api/status every 2 s and /snapshot.jpg every
``serve.frame_interval_s``, 1 s), as a browser on another machine would through a tunnel; the browser's own
rendering is not on the device. Reported: fps per case (median over rounds), served / off (the issue's target:
a cost of at most 1 %, i.e. >= 0.99), the process' CPU time per frame in each case (off / served: the same
cost without the wall clock, which other load on a shared host swamps), the requests served, and each part's
CPU time measured on its own thread (a /metrics scrape, the page's status document, one snapshot, the
Recorder per frame) summed at the scrape and page rates into a share of the run's CPU: the figure that stays
put when the host is busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.demo import demo_packages
from edgeinfer.core.serve.config import ServeConfig
from edgeinfer.core.serve.recorder import Recorder
from edgeinfer.core.serve.server import StatusServer
from edgeinfer.core.session import RunSession

ROOT = Path(__file__).resolve().parents[1]
PAGE_POLL_S = 2.0  # static/page.js polls api/status this often


class Client(threading.Thread):
    """GETs ``path`` every ``every_s`` until stopped; counts answers."""

    def __init__(self, url: str, every_s: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s, self.stop_event = url, every_s, stop
        self.ok = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    r.read()
                    self.ok += int(r.status == 200)
            except OSError:
                pass  # 503 before the first frame
            self.stop_event.wait(self.every_s)


def one_run(model: Path, frames: int, served: bool, scrape_s: float) -> tuple[float, float, dict[str, int]]:
    """(fps, process CPU ms per frame, requests answered) of one run."""
    cfg = EdgeInferConfig(model={"path": str(model)}, source={"uri": f"synthetic:640x480:{frames}"},
                          output={"print_detections": False})
    rec = Recorder()
    session = RunSession(cfg, extra_sinks=[rec] if served else [])
    server, clients, stop = None, [], threading.Event()
    if served:
        rec.telemetry = lambda: session.telemetry
        scfg = ServeConfig(listen="127.0.0.1:0")
        server = StatusServer(scfg, lambda: session, rec)
        server.start()
        clients = [Client(server.url + "/metrics", scrape_s, stop),
                   Client(server.url + "/api/status", PAGE_POLL_S, stop),
                   Client(server.url + "/snapshot.jpg", scfg.frame_interval_s, stop)]
        for c in clients:
            c.start()
    session.start()  # the model loads and warms up: not counted
    cpu0 = time.process_time()  # the whole process from here: pipeline, server and request threads
    session.wait()
    cpu = time.process_time() - cpu0
    summary = session.last_summary or {}
    stop.set()
    for c in clients:
        c.join(15)
    session.stop(0)
    if server is not None:
        server.stop()
    counts = {name: c.ok for name, c in zip(("metrics", "status", "snapshot"), clients, strict=False)}
    return float(summary["fps"]), cpu * 1e3 / max(1, int(summary["frames"])), counts


class _Last:
    """A sink keeping the latest result (to feed the Recorder by hand in ``parts``)."""

    last: Any = None

    def start(self, ctx: Any) -> None:
        pass

    def on_result(self, result: Any) -> None:
        self.last = result

    def close(self, summary: dict[str, Any]) -> None:
        pass


def parts(model: Path, reps: int = 40) -> dict[str, float]:
    """CPU ms (this thread only, so other load does not count) of each thing serving does, on a live session."""
    from prometheus_client import generate_latest

    from edgeinfer.core.serve.page import status_doc

    cfg = EdgeInferConfig(model={"path": str(model)}, source={"uri": "synthetic:640x480", "fps": 30},
                          output={"print_detections": False})
    rec, last = Recorder(), _Last()
    session = RunSession(cfg, extra_sinks=[rec, last])
    rec.telemetry = lambda: session.telemetry
    server = StatusServer(ServeConfig(listen="127.0.0.1:0"), lambda: session, rec)
    session.start()
    threading.Event().wait(3.0)  # a few seconds of frames for the histograms and the chart

    def cost(fn: Any, n: int = reps) -> float:
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        return (time.thread_time() - t0) * 1e3 / n

    out = {"metrics_ms": cost(lambda: generate_latest(server._registry)),
           "status_ms": cost(lambda: json.dumps(status_doc(session, rec, server.cfg), default=str)),
           "snapshot_ms": cost(session.snapshot),
           "recorder_ms_per_frame": cost(lambda: rec.on_result(last.last), 2000)}
    session.stop(0)
    return {k: round(v, 4) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scrape-s", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    onnx_pkg, _ = demo_packages(ROOT / ".cache")
    one_run(onnx_pkg, 100, True, args.scrape_s)  # warm the caches (thread tuning, imports) before measuring
    fps: dict[str, list[float]] = {"off": [], "served": []}
    cpu: dict[str, list[float]] = {"off": [], "served": []}
    requests: list[dict[str, int]] = []
    for i in range(args.rounds):
        order = ("off", "served") if i % 2 == 0 else ("served", "off")  # alternate: drift hits both cases
        for case in order:
            f, c, counts = one_run(onnx_pkg, args.frames, case == "served", args.scrape_s)
            fps[case].append(f)
            cpu[case].append(c)
            if counts:
                requests.append(counts)
    med = {k: statistics.median(v) for k, v in fps.items()}
    cost = parts(onnx_pkg)
    # CPU ms per second the serving side adds at this scrape and page rate and the measured frame rate (HTTP
    # handling itself not included), against the CPU ms per second the run spends
    per_s = (cost["metrics_ms"] / args.scrape_s + cost["status_ms"] / PAGE_POLL_S + cost["snapshot_ms"] / 1.0
             + cost["recorder_ms_per_frame"] * med["served"])
    run_per_s = statistics.median(cpu["off"]) * med["off"]
    pairs = [s / o for s, o in zip(fps["served"], fps["off"], strict=True)]
    report: dict[str, Any] = {
        "frames": args.frames, "rounds": args.rounds, "scrape_s": args.scrape_s,
        "fps_off": round(med["off"], 2), "fps_served": round(med["served"], 2),
        "ratio": round(med["served"] / med["off"], 4), "ratio_per_round": [round(p, 4) for p in pairs],
        "fps_all": {k: [round(x, 2) for x in v] for k, v in fps.items()},
        "requests_per_run": requests[-1] if requests else {}, "target": ">= 0.99",
        # on a device whose cores the pipeline saturates, throughput goes as 1 / CPU per frame: this ratio is the
        # same cost measured without the wall clock, so other load on a shared host does not swamp it
        "cpu_ms_per_frame_off": round(statistics.median(cpu["off"]), 3),
        "cpu_ms_per_frame_served": round(statistics.median(cpu["served"]), 3),
    }
    report["parts_cpu_ms"] = cost
    report["serving_cpu_ms_per_s"] = round(per_s, 3)
    report["serving_share_of_run_cpu"] = round(per_s / run_per_s, 5)
    report["cpu_ratio"] = round(report["cpu_ms_per_frame_off"] / report["cpu_ms_per_frame_served"], 4)
    report["met"] = report["ratio"] >= 0.99
    report["cpu_met"] = report["cpu_ratio"] >= 0.99
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.frames} frames x {args.rounds} rounds (synthetic 640x480, demo model, unpaced)")
    print(f"  off:    {report['fps_off']:8.2f} fps   {report['fps_all']['off']}")
    print(f"  served: {report['fps_served']:8.2f} fps   {report['fps_all']['served']}")
    print(f"  served / off: {report['ratio']:.4f} (per round {report['ratio_per_round']}); target >= 0.99: "
          f"{'met' if report['met'] else 'MISSED'}")
    print(f"  CPU ms per frame (whole process): off {report['cpu_ms_per_frame_off']}, served "
          f"{report['cpu_ms_per_frame_served']}; off / served {report['cpu_ratio']:.4f}: "
          f"{'met' if report['cpu_met'] else 'MISSED'}")
    print(f"  requests answered in one served run: {report['requests_per_run']}")
    print(f"  each part, CPU ms (its thread only): {cost}")
    print(f"  serving adds {report['serving_cpu_ms_per_s']:.2f} CPU ms per second = "
          f"{report['serving_share_of_run_cpu']:.2%} of the run's {run_per_s:.0f} CPU ms per second")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
