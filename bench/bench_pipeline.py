"""edgeinfer against the bare runtime, per model, repeated; plus the CLI's cold start.

    .venv/bin/python bench/bench_pipeline.py [--models demo zoo:layout-cdla] [--repeats 3] [--json]
                                              [--plot bench-latency.png] [--threads N]

For each model, ``edgeinfer.core.benchmark.run_benchmark`` (same session, same frames) gives:
* bare p50:        ``InferenceSession.run`` on pre-made tensors, one frame at a time.
* edgeinfer p50:   the infer stage of the sequential pipeline; overhead = edgeinfer / bare (target <= 1.03).
* throughput:      the pipelined run's frames/s; bound = 1 / p50 of its slowest stage;
                   efficiency = throughput / bound (target >= 0.9); busy = throughput x the slowest
                   stage's MEAN time (near 1 = the stage never waited: a shortfall is its own tail).
Bare and edgeinfer alternate in 10 blocks per run (drift hits both). Each model runs ``--repeats`` times:
the table shows the median and [min..max] across repeats.
Cold start: wall time of ``edgeinfer run --max-frames 1 -q --out TMP`` (demo model, demo frames) as a
subprocess, process start to exit with its first result written; median of ``--cold-runs`` (target <= 1.5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeinfer.core.backends import BackendOptions
from edgeinfer.core.benchmark import BenchResult, run_benchmark
from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.plots import latency_plot

TARGETS = {"overhead_ratio": ("<=", 1.03), "efficiency": (">=", 0.9), "cold_start_s": ("<=", 1.5)}
METRICS = ("bare_p50_ms", "edgeinfer_p50_ms", "overhead_ratio", "throughput_fps", "bound_fps", "efficiency",
           "bottleneck_busy")
DEFAULT_FRAMES = {"demo": 500, "zoo:layout-cdla": 100}


def document_frames() -> list[np.ndarray]:
    """scikit-image's page, as-is, mirrored and enlarged: a layout model then has text to decode."""
    from skimage import data

    page = cv2.cvtColor(data.page(), cv2.COLOR_GRAY2BGR)
    return [page, cv2.flip(page, 1), cv2.resize(page, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)]


def bench_model(model: str, frames: int, repeats: int, threads: int | None) -> tuple[dict[str, Any], BenchResult]:
    cfg = EdgeInferConfig(model={"path": None if model == "demo" else model},
                          backend=BackendOptions(threads=threads))
    images = document_frames() if model.startswith("zoo:layout") else None
    reports: list[dict[str, Any]] = []
    last: BenchResult | None = None
    for _ in range(repeats):
        last = run_benchmark(cfg, frames=frames, rounds=10, images=images)
        reports.append(last.report())
    assert last is not None
    row: dict[str, Any] = {"model": model, "frames": frames, "backend": reports[-1]["backend"]}
    for key in METRICS:
        vals = [float(r[key]) for r in reports]
        row[key] = round(statistics.median(vals), 4)
        row[f"{key}_range"] = [round(min(vals), 4), round(max(vals), 4)]
    row["bottleneck"] = [r["bottleneck"] for r in reports]
    row["pipelined_stages_ms"] = reports[-1]["pipelined_stages_ms"]
    return row, last


def cold_start(runs: int) -> list[float]:
    """Seconds from process start to exit of `edgeinfer run --max-frames 1 -q --out TMP` (demo model)."""
    exe = str(Path(sys.executable).with_name("edgeinfer"))
    times: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = subprocess.run([exe, "run", "--max-frames", "1", "-q", "--out", out],
                                 capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False)
            times.append(time.perf_counter() - t0)
            if res.returncode != 0 or not (Path(out) / "results.jsonl").is_file():
                raise SystemExit(f"edgeinfer run failed ({res.returncode}): {res.stderr.strip()[-400:]}")
    return times


def verdict(key: str, value: float) -> str:
    op, target = TARGETS[key]
    ok = value <= target if op == "<=" else value >= target
    return f"{'ok' if ok else 'MISSED'} ({op} {target})"


def print_table(rows: list[dict[str, Any]], cold: list[float] | None) -> None:
    head = ["model", "frames", *METRICS, "bottleneck"]
    cells = [[r["model"], str(r["frames"]),
              *(f"{r[k]:g} [{r[k + '_range'][0]:g}..{r[k + '_range'][1]:g}]" for k in METRICS),
              ",".join(sorted(set(r["bottleneck"])))] for r in rows]
    width = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, width, strict=True)),
             "  ".join("-" * w for w in width)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, width, strict=True)) for cell in cells]
    for r in rows:
        lines.append(f"{r['model']}: overhead {verdict('overhead_ratio', r['overhead_ratio'])}, "
                     f"efficiency {verdict('efficiency', r['efficiency'])}; backend {r['backend']}; "
                     f"pipelined stage p50 ms {r['pipelined_stages_ms']}")
    if cold:
        med = statistics.median(cold)
        lines.append(f"cold start (demo, edgeinfer run --max-frames 1): median {med:.3f} s "
                     f"{verdict('cold_start_s', med)}; runs {[round(t, 3) for t in cold]}")
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "zoo:layout-cdla"],
                    help="'demo' or any --model value (package folder, zoo:NAME)")
    ap.add_argument("--frames", type=int, default=None, help="frames per run (default: demo 500, layout 100)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="backend.threads (default: the backend's choice)")
    ap.add_argument("--cold-runs", type=int, default=5, help="0 skips the cold-start measurement")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    ap.add_argument("--plot", type=Path, default=None, help="latency PNG (first model; others get -<model>)")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for i, model in enumerate(args.models):
        frames = args.frames or DEFAULT_FRAMES.get(model, 200)
        row, last = bench_model(model, frames, args.repeats, args.threads)
        rows.append(row)
        if args.plot:
            tag = "" if i == 0 else "-" + "".join(c if c.isalnum() else "-" for c in model)
            row["plot"] = str(latency_plot(last, args.plot.with_name(f"{args.plot.stem}{tag}{args.plot.suffix}")))
    cold = cold_start(args.cold_runs) if args.cold_runs else None
    if args.json:
        out = {"bench": "pipeline", "targets": TARGETS, "rows": rows,
               "cold_start_s": {"median": round(statistics.median(cold), 3), "runs": [round(t, 3) for t in cold]}
               if cold else None}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        print_table(rows, cold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
