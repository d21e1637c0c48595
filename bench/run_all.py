"""Run every benchmark in this folder, one after another (`make bench`); figures go in docs/benchmarks.md.

Each benchmark measures edgeinfer against the bare runtime or SDK in the same run, so the ratios hold on
any machine; absolute figures depend on it. Run on a quiet machine: other load skews the ratios.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ("bench_pipeline.py", "bench_cold_start.py", "bench_idle.py", "bench_outbox.py", "bench_publish.py",
           "bench_alert.py", "bench_faults.py", "bench_optimize.py", "bench_shadow.py", "bench_hybrid.py",
           "bench_serve.py", "bench_streams.py")


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, str(here / name), *sys.argv[1:]], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
