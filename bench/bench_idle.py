"""CPU per frame at a paced camera rate: onnxruntime's default spin-wait vs ``backend.low_power``,
each against the bare runtime paced the same way in the same run.

    .venv/bin/python bench/bench_idle.py [--fps 30] [--seconds 10] [--rounds 2] [--threads 2] [--json]

A camera delivers a frame every 33 ms and the demo model needs ~3 ms: between frames onnxruntime's
intra-op threads spin, waiting for work that comes 30 ms later. ``backend.low_power: true`` sets
``session.force_spinning_stop=1`` so they sleep as soon as a frame is done.

Only the intra-op pool's extra threads spin: with one thread (what edgeinfer's tuning picks for the
demo model on a 2-core host) there is nothing to stop. So ``--threads`` (default 2, what onnxruntime
takes on a 2-core device without tuning; a 4-core device has 4) is set for every case.

Cases (demo model, 640x480 frames):
* bare onnxruntime: one thread waits for the next frame time, then ``InferenceSession.run`` on a
  pre-made tensor; a session with default options, and one with ``force_spinning_stop``.
* edgeinfer: ``edgeinfer run`` on ``synthetic:640x480:N`` paced at ``--fps``, low_power off and on
  (the whole pipeline: read, preprocess, infer, decode).
Reported per case: process CPU time per frame (every thread), that as a share of one core, and the
inference p50. Ratios: each edgeinfer case against the bare loop with the same setting, and
low_power against the default within each. Cases interleave per round; medians across rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.runner import load_configured
from edgeinfer.core.session import RunSession

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_publish import report


def bare_case(model_path: Path, threads: int, tensor: np.ndarray, fps: float, frames: int,
              low_power: bool) -> dict[str, float]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    if low_power:
        so.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(str(model_path), sess_options=so, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: tensor}
    for _ in range(5):
        session.run(None, feed)
    period = 1.0 / fps
    times = []
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(frames):
        delay = t0 + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # the camera's pace: nothing to synchronise with here
        s = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - s) * 1e3)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"cpu_ms_per_frame": cpu / frames * 1e3, "cpu_share": cpu / wall, "infer_p50_ms": statistics.median(times)}


def edgeinfer_case(fps: float, frames: int, threads: int, low_power: bool) -> dict[str, float]:
    cfg = EdgeInferConfig(source={"uri": f"synthetic:640x480:{frames}", "fps": fps},
                          backend={"low_power": low_power, "threads": threads}, output={"print_detections": False})
    session = RunSession(cfg)
    session.start()
    c0, t0 = time.process_time(), time.perf_counter()
    session.wait()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    session.stop()
    summary = session.last_summary or {}
    n = summary["frames"]
    return {"cpu_ms_per_frame": cpu / n * 1e3, "cpu_share": cpu / wall,
            "infer_p50_ms": summary["stages_ms"]["infer"]["p50"]}


def run(fps: float, seconds: float, rounds: int, threads: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    frames = int(fps * seconds)
    model, _ = load_configured(EdgeInferConfig())  # the demo model
    path = model.package.model_path
    tensor = model.preprocessor(np.full((480, 640, 3), 114, np.uint8))[0][None]
    model.close()
    cases = {
        ("bare", False): lambda: bare_case(path, threads, tensor, fps, frames, False),
        ("bare", True): lambda: bare_case(path, threads, tensor, fps, frames, True),
        ("edgeinfer", False): lambda: edgeinfer_case(fps, frames, threads, False),
        ("edgeinfer", True): lambda: edgeinfer_case(fps, frames, threads, True),
    }
    samples: dict[tuple[str, bool], list[dict[str, float]]] = {k: [] for k in cases}
    for _ in range(rounds):
        for key, case in cases.items():
            samples[key].append(case())
    med = {k: {m: statistics.median(s[m] for s in v) for m in v[0]} for k, v in samples.items()}
    rows = []
    for (who, low), m in med.items():
        rows.append({"case": f"{who}, {'low_power' if low else 'default (spinning)'}",
                     "CPU ms/frame": m["cpu_ms_per_frame"], "CPU share of a core": m["cpu_share"],
                     "infer p50 ms": m["infer_p50_ms"],
                     "CPU vs bare, same setting": m["cpu_ms_per_frame"] / med[("bare", low)]["cpu_ms_per_frame"],
                     "CPU vs default": m["cpu_ms_per_frame"] / med[(who, False)]["cpu_ms_per_frame"],
                     "infer p50 vs default": m["infer_p50_ms"] / med[(who, False)]["infer_p50_ms"]})
    return rows, {"fps": fps, "frames per case": frames, "rounds": rounds, "inference threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="inference threads, every case")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows, extra = run(args.fps, args.seconds, args.rounds, args.threads)
    report(f"CPU at a paced {args.fps:g} fps: spinning vs low_power", rows, args.json, extra)


if __name__ == "__main__":
    main()
