"""edgeinfer against the bare runtime, per model, repeated; plus the CLI's cold start.

    .venv/bin/python bench/bench_pipeline.py [--models demo zoo:layout-cdla] [--repeats 3] [--json]
                                              [--plot bench-latency.png] [--threads N]

For each model, ``edgeinfer.core.benchmark.run_benchmark`` (same session, same frames) gives:
* bare p50:        ``InferenceSession.run`` on pre-made tensors, one frame at a time.
* edgeinfer p50:   the infer stage of the sequential pipeline; overhead = edgeinfer / bare (target <= 1.03).
* throughput:      the pipelined run's frames/s; bound = 1 / p50 of its slowest stage;
                   efficiency = throughput / bound (target >= 0.9); busy = throughput x the slowest
                   stage's MEAN time (near 1 = the stage never waited: a shortfall is its own tail).
Whole frame (take the frame -> decoded result), against the loop a user writes by hand (OpenCV/numpy
preprocess, the runtime's call, numpy decode; same session, frames, threads; ``core/handwritten.py``):
* hand / seq / pipe p50, p99 and jitter (p99/p50) of the hand-written loop, edgeinfer sequential and pipelined.
* sequential_vs_hand: sequential whole-frame p50 / the hand-written loop's (target <= 1.02).
* pipelined_vs_hand, bound_vs_hand: pipelined and bound fps / the hand-written loop's fps; target
  pipelined_vs_hand >= 0.95 x bound_vs_hand (``share_of_bound``).
A model whose decoder has no hand-written loop (PicoDet) shows "-" there.
Hand-written, bare and edgeinfer alternate in 10 blocks per run (drift hits them alike). Each model runs
``--repeats`` times: the table shows the median and [min..max] across repeats.
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

TARGETS = {"overhead_ratio": ("<=", 1.03), "efficiency": (">=", 0.9), "cold_start_s": ("<=", 1.5),
           "sequential_vs_hand": ("<=", 1.02), "share_of_bound": (">=", 0.95)}
METRICS = ("bare_p50_ms", "edgeinfer_p50_ms", "overhead_ratio", "throughput_fps", "bound_fps", "efficiency",
           "bottleneck_busy")
FRAME_METRICS = ("hand_p50_ms", "hand_p99_ms", "hand_jitter", "hand_fps", "seq_p50_ms", "seq_p99_ms", "seq_jitter",
                 "seq_fps", "pipe_p50_ms", "pipe_p99_ms", "pipe_jitter", "pipe_fps", "sequential_vs_hand",
                 "pipelined_vs_hand", "bound_vs_hand", "share_of_bound")
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
    row: dict[str, Any] = {"model": model, "frames": frames, "backend": reports[-1]["backend"],
                           "hand_written_missing": reports[-1]["hand_written_missing"]}
    flat = [{**r, **whole_frame_figures(r)} for r in reports]
    for key in (*METRICS, *FRAME_METRICS):
        vals = [float(r[key]) for r in flat if r.get(key) is not None]
        row[key] = round(statistics.median(vals), 4) if vals else None
        row[f"{key}_range"] = [round(min(vals), 4), round(max(vals), 4)] if vals else None
    row["bottleneck"] = [r["bottleneck"] for r in reports]
    row["pipelined_stages_ms"] = reports[-1]["pipelined_stages_ms"]
    return row, last


def whole_frame_figures(rep: dict[str, Any]) -> dict[str, float | None]:
    """The whole-frame figures of one ``BenchResult.report()``, flat; None where there is no hand-written loop."""
    out: dict[str, float | None] = {}
    for short, loop in (("hand", "hand_written"), ("seq", "sequential"), ("pipe", "pipelined")):
        row = rep["whole_frame"][loop] or {}
        for key in ("p50_ms", "p99_ms", "jitter", "fps"):
            out[f"{short}_{key}"] = row.get(key)
    for key in ("sequential_vs_hand", "pipelined_vs_hand", "bound_vs_hand"):
        out[key] = rep.get(key)
    pv, bv = out["pipelined_vs_hand"], out["bound_vs_hand"]
    out["share_of_bound"] = round(pv / bv, 4) if pv is not None and bv else None
    return out


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


def cell(r: dict[str, Any], key: str) -> str:
    if r[key] is None:
        return "-"
    lo, hi = r[key + "_range"]
    return f"{r[key]:g} [{lo:g}..{hi:g}]"


def table(rows: list[dict[str, Any]], metrics: tuple[str, ...], extra: dict[str, Any] | None = None) -> list[str]:
    head = ["model", "frames", *metrics, *(extra or {})]
    cells = [[r["model"], str(r["frames"]), *(cell(r, k) for k in metrics),
              *(f(r) for f in (extra or {}).values())] for r in rows]
    width = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, width, strict=True)),
             "  ".join("-" * w for w in width)]
    return lines + ["  ".join(c.ljust(w) for c, w in zip(cs, width, strict=True)) for cs in cells]


def print_table(rows: list[dict[str, Any]], cold: list[float] | None) -> None:
    lines = table(rows, METRICS, {"bottleneck": lambda r: ",".join(sorted(set(r["bottleneck"])))})
    lines += ["", "whole frame (take the frame -> decoded result):", *table(rows, FRAME_METRICS)]
    for r in rows:
        lines.append(f"{r['model']}: overhead {verdict('overhead_ratio', r['overhead_ratio'])}, "
                     f"efficiency {verdict('efficiency', r['efficiency'])}; backend {r['backend']}; "
                     f"pipelined stage p50 ms {r['pipelined_stages_ms']}")
        if r["sequential_vs_hand"] is None:
            lines.append(f"{r['model']}: {r['hand_written_missing']}")
        else:
            lines.append(f"{r['model']}: sequential_vs_hand {verdict('sequential_vs_hand', r['sequential_vs_hand'])}, "
                         f"pipelined_vs_hand / bound_vs_hand {verdict('share_of_bound', r['share_of_bound'])}")
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
