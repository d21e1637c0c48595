"""Cold start: `edgeinfer run --model PKG --source IMAGE` against a hand-written onnxruntime script doing the same
(read, resize, run, score: bench/cold_start_bare.py), each as a whole process, alternating.

    .venv/bin/python bench/bench_cold_start.py [--runs 7] [--model PKG] [--image IMAGE] [--json] [--keep-env]
                                               [--fresh-state]

Per run: wall time from spawning the process to reaping it, and its peak RSS (``ru_maxrss`` from ``wait4``:
the kernel's own account of that one child). One warm-up run of each first, not counted; then pairs, the
order flipping each pair (A B, B A, ...) so drift and caching hit both alike. Reported: the medians, the
median of the per-pair wall ratios (edgeinfer / bare), the peak RSS difference, and the CPU time (user + sys)
ratio, which other load on the machine moves less than the wall time.
Targets: wall ratio <= 1.5; peak RSS <= the bare script's + 30 MiB.

Defaults: the demo package (BlazeFace full range, ONNX) and the astronaut frame, fetched into the cache
once. Python keeps bytecode caches as an installed package has them: PYTHONDONTWRITEBYTECODE is dropped
from the children's environment (``--keep-env`` keeps it, and every edgeinfer module then compiles from
source at each start). Both run in a fresh working folder. The state dir is kept from run to run, as on a
device that restarts (the thread choice measured at the first start is reused, core/tuning.py);
``--fresh-state`` gives every run an empty one: a first start, which measures it.
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

TARGETS = {"wall_ratio": 1.5, "rss_delta_mib": 30.0}


def run_once(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds) of one whole process; raises SystemExit when it fails."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read().decode()[-600:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # Linux reports KiB


DEFAULTS = """
import json
from edgeinfer.core.config import cache_dir
from edgeinfer.core.demo import demo_frames, demo_packages
print(json.dumps([str(demo_packages(cache_dir())[0]), str(demo_frames(cache_dir())[0] / "00-astronaut.png")]))
"""


def defaults() -> tuple[Path, Path]:
    """The demo package and frame, found (or fetched once) by a child: this process stays small, because a
    child's peak RSS starts from its parent's (the kernel counts the memory it was forked with)."""
    out = subprocess.run([sys.executable, "-c", DEFAULTS], capture_output=True, text=True, check=True).stdout
    model, image = json.loads(out)
    return Path(model), Path(image)


def measure(runs: int, model: Path, image: Path, keep_env: bool, fresh_state: bool = False) -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    bare = [sys.executable, str(Path(__file__).with_name("cold_start_bare.py")), str(model / "model.onnx"),
            str(image)]
    ours = [str(bin_dir / "edgeinfer"), "run", "--model", str(model), "--source", str(image)]
    env = dict(os.environ)
    if not keep_env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    figures: dict[str, list[tuple[float, float, float]]] = {"bare": [], "edgeinfer": []}
    with tempfile.TemporaryDirectory() as work:
        env["EDGEINFER_STATE_DIR"] = str(Path(work) / "state")
        both = {"bare": bare, "edgeinfer": ours}
        for cmd in both.values():  # warm-up: bytecode caches, the page cache
            run_once(cmd, env, work)
        for i in range(runs):
            if fresh_state:
                env["EDGEINFER_STATE_DIR"] = str(Path(work) / f"state-{i}")
            for name in ("bare", "edgeinfer") if i % 2 == 0 else ("edgeinfer", "bare"):
                figures[name].append(run_once(both[name], env, work))
    out: dict[str, Any] = {"runs": runs, "model": str(model), "image": str(image),
                           "bytecode_cache": not keep_env, "state": "fresh each run" if fresh_state else "kept"}
    for name, rows in figures.items():
        walls, rss, cpu = [w for w, _, _ in rows], [r for _, r, _ in rows], [c for _, _, c in rows]
        out[name] = {"wall_s_median": round(statistics.median(walls), 3), "wall_s": [round(w, 3) for w in walls],
                     "peak_rss_mib_median": round(statistics.median(rss), 1),
                     "peak_rss_mib": [round(r, 1) for r in rss], "cpu_s_median": round(statistics.median(cpu), 3)}
    ratios = [e[0] / b[0] for e, b in zip(figures["edgeinfer"], figures["bare"], strict=True)]
    out["wall_ratio"] = round(statistics.median(ratios), 3)
    out["wall_ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    cpu_ratios = [e[2] / b[2] for e, b in zip(figures["edgeinfer"], figures["bare"], strict=True)]
    out["cpu_ratio"] = round(statistics.median(cpu_ratios), 3)  # user + sys: less moved by other load than wall
    out["rss_delta_mib"] = round(out["edgeinfer"]["peak_rss_mib_median"] - out["bare"]["peak_rss_mib_median"], 1)
    out["targets"] = {f"{key} <= {limit:g}": out[key] <= limit for key, limit in TARGETS.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="counted runs of each (default 7)")
    ap.add_argument("--model", type=Path, default=None, help="ONNX model package (default: the demo package)")
    ap.add_argument("--image", type=Path, default=None, help="one image (default: the demo's astronaut)")
    ap.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set")
    ap.add_argument("--fresh-state", action="store_true", help="an empty state dir for every run (first starts)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = ap.parse_args(argv)
    model, image = defaults() if args.model is None or args.image is None else (args.model, args.image)
    res = measure(args.runs, args.model or model, args.image or image, args.keep_env, args.fresh_state)
    if args.json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
        return 0
    lines = [f"state dir {res['state']}, bytecode cache {'on' if res['bytecode_cache'] else 'off'}"]
    lines += [f"{name:<10} wall median {res[name]['wall_s_median']:.3f} s {res[name]['wall_s']}, peak RSS median "
              f"{res[name]['peak_rss_mib_median']:.1f} MiB, CPU median {res[name]['cpu_s_median']:.3f} s"
              for name in ("bare", "edgeinfer")]
    lines.append(f"edgeinfer / bare wall: median of {args.runs} pairs {res['wall_ratio']:.3f} "
                 f"[{res['wall_ratio_range'][0]:.3f}..{res['wall_ratio_range'][1]:.3f}]; "
                 f"peak RSS +{res['rss_delta_mib']:.1f} MiB; CPU (user + sys) ratio {res['cpu_ratio']:.3f}")
    lines += [f"{'met' if ok else 'MISSED'}: {name}" for name, ok in res["targets"].items()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
