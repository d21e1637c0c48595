"""What the cloud fallback costs the frame path: throughput with fallback off, and on with the endpoint slow
(every answer held 2 s) or down (connections refused), in the same process, alternating.

    .venv/bin/python bench/bench_hybrid.py [--frames 300] [--rounds 3] [--json]

Each case runs a RunSession with the demo model over the demo frames (real faces, looped to ``--frames``),
unpaced. In the fallback cases the band is [0.01, 1.0), so every frame with a face triggers, and the budget is
10,000 a minute, so the frame path encodes and offers as often as it can: the worst case for the frame path.
The endpoint is a SageMaker endpoint served by moto over TLS on this machine (tests/hybrid/servers.py), reached
with the real boto3 client through netguard. Reported: fps per case (median over rounds), the ratio to fallback
off (target >= 0.98), and the fallback's counts of the last round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeinfer.core.config import EdgeInferConfig, cache_dir  # noqa: E402
from edgeinfer.core.demo import demo_frames, demo_packages  # noqa: E402
from edgeinfer.core.session import RunSession  # noqa: E402
from tests.hybrid.servers import MotoTLS  # noqa: E402
from tests.telemetry.pki import make_pki  # noqa: E402


def one_run(model: Path, frames_dir: Path, frames: int, fallback: dict[str, Any] | None
            ) -> tuple[float, dict, float]:
    """(fps, the fallback's state, process CPU ms per frame: every thread, the in-process stand-in endpoint too)."""
    cfg = EdgeInferConfig(model={"path": str(model)}, source={"uri": str(frames_dir), "loop": True},
                          max_frames=frames, output={"print_detections": False}, fallback=fallback or {})
    svc = RunSession(cfg)
    cpu0 = time.process_time()
    svc.start()
    svc.wait()
    cpu_ms = (time.process_time() - cpu0) * 1e3 / frames
    state = svc.status().get("fallback") or {}
    summary = svc.last_summary or {}
    svc.stop(0)
    return float(summary["fps"]), state, cpu_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_CONFIG_FILE": "/dev/null",
                 "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        os.environ[k] = v
    cache = cache_dir()
    model = demo_packages(cache)[0]
    frames_dir = demo_frames(cache)[0]
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp) / "pki")
        moto = MotoTLS(pki).start()
        moto.delay_s = 2.0
        fallback = {"enabled": True, "hosts": ["localhost"], "format": "json-b64", "band": {"low": 0.01, "high": 1.0},
                    "per_minute": 10_000, "per_day": 10_000_000, "timeout_s": 5.0,
                    "endpoint": {"type": "sagemaker", "endpoint_name": "faces", "region": "us-east-1",
                                 "endpoint_url": moto.url, "ca_file": str(pki.ca)}}
        fps: dict[str, list[float]] = {"off": [], "slow 2 s": [], "down": []}
        cpu: dict[str, list[float]] = {k: [] for k in fps}
        states: dict[str, dict] = {}
        for _ in range(args.rounds):
            f, _, c = one_run(model, frames_dir, args.frames, None)
            fps["off"].append(f)
            cpu["off"].append(c)
            f, states["slow 2 s"], c = one_run(model, frames_dir, args.frames, fallback)
            fps["slow 2 s"].append(f)
            cpu["slow 2 s"].append(c)
            moto.stop()
            f, states["down"], c = one_run(model, frames_dir, args.frames, fallback)
            fps["down"].append(f)
            cpu["down"].append(c)
            moto.start()
            moto.delay_s = 2.0
        moto.stop()
    base = statistics.median(fps["off"])
    base_cpu = statistics.median(cpu["off"])
    report = {case: {"fps": round(statistics.median(v), 2), "ratio": round(statistics.median(v) / base, 3),
                     "cpu_ms_per_frame": round(statistics.median(cpu[case]), 3),
                     "cpu_ratio": round(base_cpu / statistics.median(cpu[case]), 3),
                     "runs": [round(x, 2) for x in v],
                     **({"fallback": {k: states[case].get(k) for k in ("frames", "triggered", "sent", "failed",
                                                                        "skipped", "breaker")}}
                        if case in states else {})} for case, v in fps.items()}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for case, r in report.items():
            print(f"{case:10s} {r['fps']:8.2f} fps  x{r['ratio']:.3f}  CPU {r['cpu_ms_per_frame']:.3f} ms/frame "
                  f"(off/this {r['cpu_ratio']:.3f})  {r['runs']}  {r.get('fallback', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
