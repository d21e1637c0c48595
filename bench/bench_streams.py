"""N streams through one model session against N separate processes, one stream each.

    .venv/bin/python bench/bench_streams.py [--streams 1 2 4 8] [--frames 150] [--rounds 3] [--json]
                                            [--plot docs/img/bench-streams.png]

Every case is whole `edgeinfer run` processes with the demo model (BlazeFace, ONNX) over unpaced
``synthetic:640x480:F`` streams (as fast as the pipeline takes them: throughput, not pacing, is measured) and
``results.jsonl`` written, annotated frames off:

* one session: ``edgeinfer run --source s1=... --source s2=...`` (one model session, one pipeline);
* N processes: N ``edgeinfer run --source ...`` started together, one stream each (what a site did before).

Aggregate fps = all results / (the last result's capture time - the first one's), read from the results files,
so start-up is left out for both alike. Peak memory: each process' own ``ru_maxrss`` (``wait4``), summed for
the N processes. The single-session bound is what one session can do on this host: 1000 / the slowest stage's
p50 of the one-stream run (its ``bound_fps``). Medians over rounds, the cases alternating within a round.
Targets (issue 16): one session's aggregate >= 0.9 x the bound; memory per extra stream <= 30 MB; and better
than N processes on both.
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

from edgeinfer.core.config import cache_dir
from edgeinfer.core.demo import demo_packages

TARGETS = {"aggregate_vs_bound": 0.9, "mib_per_extra_stream": 30.0}
EDGEINFER = str(Path(sys.executable).with_name("edgeinfer"))


def _spawn(streams: list[str], model: Path, out: Path, frames: int) -> subprocess.Popen[bytes]:
    cfg = out / "cfg.yaml"
    out.mkdir(parents=True)
    cfg.write_text("output:\n  annotate: false\n  print_detections: false\n")
    args = [a for i, s in enumerate(streams) for a in ("--source", f"{s}=synthetic:640x480:{frames}")]
    if len(streams) == 1:
        args = ["--source", f"synthetic:640x480:{frames}"]
    return subprocess.Popen([EDGEINFER, "run", "--config", str(cfg), "--model", str(model), *args, "--out",
                             str(out), "-q", "--state-dir", str(out.parent / "state")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _reap(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    """Wait for every process; their peak RSS in MiB (raises when one failed)."""
    peaks = []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err = p.stderr.read().decode()[-800:] if p.stderr else ""
            raise SystemExit(f"edgeinfer run failed ({p.returncode}): {err}")
        peaks.append(usage.ru_maxrss / 1024)
    return peaks


def _aggregate(outs: list[Path]) -> tuple[float, int]:
    """(aggregate fps from the results' capture times, results counted)."""
    ts = [json.loads(line)["ts"] for o in outs for line in (o / "results.jsonl").read_text().splitlines()]
    return (len(ts) - 1) / (max(ts) - min(ts)), len(ts)


def one_session(n: int, model: Path, frames: int, tmp: Path) -> dict[str, Any]:
    out = tmp / f"session-{n}-{time.monotonic_ns()}"
    peak = _reap([_spawn([f"s{i}" for i in range(n)], model, out, frames)])[0]
    fps, count = _aggregate([out])
    summary = json.loads((out / "summary.json").read_text())
    assert count == n * frames, (count, n * frames)
    return {"fps": fps, "mib": peak, "bound_fps": summary.get("bound_fps"), "mean_batch": summary.get("mean_batch")}


def processes(n: int, model: Path, frames: int, tmp: Path) -> dict[str, Any]:
    base = tmp / f"procs-{n}-{time.monotonic_ns()}"
    outs = [base / f"p{i}" for i in range(n)]
    procs = [_spawn([f"s{i}"], model, out, frames) for i, out in enumerate(outs)]
    peaks = _reap(procs)
    fps, count = _aggregate(outs)
    assert count == n * frames, (count, n * frames)
    return {"fps": fps, "mib": sum(peaks)}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in report["cases"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("session", "one session, N streams", "o-"), ("processes", "N processes", "s--")):
        a.plot(ns, [report["cases"][str(n)][key]["fps"] for n in ns], style, label=label)
        b.plot(ns, [report["cases"][str(n)][key]["mib"] for n in ns], style, label=label)
    a.axhline(report["bound_fps"], color="grey", lw=1, ls=":", label="single-session bound")
    a.set(xlabel="streams", ylabel="aggregate fps", title="throughput", xticks=ns, ylim=(0, None))
    b.set_ylim(0, None)
    b.set(xlabel="streams", ylabel="peak RSS, MiB (summed)", title="memory", xticks=ns)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("edgeinfer: N streams in one session vs N processes (demo model, 640x480, this host)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--frames", type=int, default=150, help="frames per stream")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    model = demo_packages(cache_dir())[0]
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {n: {"session": [], "processes": []} for n in args.streams}
    with tempfile.TemporaryDirectory(prefix="edgeinfer-bench-streams-") as t:
        tmp = Path(t)
        one_session(1, model, 20, tmp)  # warm caches and the thread tuning record
        for r in range(args.rounds):
            for n in args.streams:
                order = ("session", "processes") if r % 2 == 0 else ("processes", "session")
                for kind in order:
                    fn = one_session if kind == "session" else processes
                    runs[n][kind].append(fn(n, model, args.frames, tmp))
                    print(f"round {r + 1}: {n} stream(s), {kind}: {runs[n][kind][-1]['fps']:.1f} fps, "
                          f"{runs[n][kind][-1]['mib']:.0f} MiB", file=sys.stderr)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(float(x[key]) for x in rows), 2)

    first = min(args.streams)
    bound = med(runs[first]["session"], "bound_fps")
    base_mib = med(runs[first]["session"], "mib")
    cases: dict[str, Any] = {}
    for n in args.streams:
        s, p = runs[n]["session"], runs[n]["processes"]
        cases[str(n)] = {
            "session": {"fps": med(s, "fps"), "mib": med(s, "mib"), "mean_batch": med(s, "mean_batch"),
                        "vs_bound": round(med(s, "fps") / bound, 3),
                        "mib_per_extra_stream": round((med(s, "mib") - base_mib) / (n - first), 1) if n > first
                        else None},
            "processes": {"fps": med(p, "fps"), "mib": med(p, "mib")},
        }
    report = {"bound_fps": bound, "frames_per_stream": args.frames, "rounds": args.rounds, "cases": cases,
              "targets": {
                  "aggregate >= 0.9 x bound": all(c["session"]["vs_bound"] >= TARGETS["aggregate_vs_bound"]
                                                  for c in cases.values()),
                  "<= 30 MiB per extra stream": all(c["session"]["mib_per_extra_stream"] is None
                                                    or c["session"]["mib_per_extra_stream"]
                                                    <= TARGETS["mib_per_extra_stream"] for c in cases.values()),
                  "one session beats N processes (fps and memory)": all(
                      c["session"]["fps"] >= c["processes"]["fps"] and c["session"]["mib"] <= c["processes"]["mib"]
                      for n, c in cases.items() if int(n) > 1)}}
    if args.plot:
        plot(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"single-session bound (1 stream, slowest stage p50): {bound:.1f} fps")
        print("streams | one session fps (x bound) | MiB (+/extra stream) | N processes fps | MiB")
        for n, c in cases.items():
            s, p = c["session"], c["processes"]
            extra = f"+{s['mib_per_extra_stream']:.1f}" if s["mib_per_extra_stream"] is not None else "-"
            print(f"{n:>7} | {s['fps']:7.1f} ({s['vs_bound']:.3f}) | {s['mib']:6.0f} ({extra}) | "
                  f"{p['fps']:7.1f} | {p['mib']:6.0f}")
        for name, ok in report["targets"].items():
            print(f"{'met' if ok else 'MISSED'}: {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
