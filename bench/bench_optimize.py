"""What `edgeinfer model optimize` buys and costs on the demo face model, on this host.

    .venv/bin/python bench/bench_optimize.py [--targets onnx-int8 onnx-fp16 tflite-int8] [--repeats 5] [--json]

For each target: the demo package (ONNX for onnx-*, its TFLite twin for tflite-int8) is optimised with the
demo clip as calibration (45 frames) and judged on held-out frames the calibration never saw: the five
sample photos and three variants of each (mirrored, zoomed 1.25x, darker by 40 levels), 20 frames. Reported
per target: agreement (precision, recall, mean IoU, score delta of the faces), file size of both, latency p50
of both (one inference, interleaved frame by frame) and the speed-up, the time the optimisation took.
Everything comes from the agreement report the command writes (``agreement.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from edgeinfer.core.demo import demo_frames, demo_packages
from edgeinfer.core.optimize.job import OptimizeOptions, optimize_package

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.core.optimize_frames import heldout_folder  # noqa: E402  (the tests' held-out frames, the same)

CACHE = Path(os.environ.get("EDGEINFER_CACHE_DIR") or ROOT / ".cache")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=["onnx-int8", "onnx-fp16", "tflite-int8"])
    ap.add_argument("--repeats", type=int, default=5, help="timing passes over the held-out frames")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    onnx_pkg, tflite_pkg = demo_packages(CACHE)
    images, clip = demo_frames(CACHE)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-optimize-") as tmp:
        Path(tmp, "heldout").mkdir()
        held = heldout_folder(images, Path(tmp, "heldout"))
        for target in args.targets:
            source = tflite_pkg if target.startswith("tflite") else onnx_pkg
            started = time.monotonic()
            outcome = optimize_package(source, Path(tmp, target), OptimizeOptions(
                target=target, calibration=str(clip), heldout=str(held), repeats=args.repeats, picture=False))
            r = outcome.report
            face = r.labels.get("face")
            rows.append({"target": target, "verdict": r.verdict, "took_s": round(time.monotonic() - started, 1),
                         "faces": face.original if face else 0, "precision": r.precision, "recall": r.recall,
                         "mean_iou": r.mean_iou, "score_delta": r.score_delta,
                         "size_original": r.original.size_bytes, "size_optimized": r.optimized.size_bytes,
                         "p50_original_ms": r.original.latency_ms_p50, "p50_optimized_ms": r.optimized.latency_ms_p50,
                         "speedup": r.speedup})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| target | verdict | faces | precision | recall | mean IoU | score delta | size (bytes) | "
          "p50 original -> optimised (ms) | speed-up | took |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['target']} | {x['verdict']} | {x['faces']} | {x['precision']} | {x['recall']} | {x['mean_iou']} "
              f"| {x['score_delta']:+.3f} | {x['size_original']:,} -> {x['size_optimized']:,} | "
              f"{x['p50_original_ms']:.2f} -> {x['p50_optimized_ms']:.2f} | x{x['speedup']:.2f} | {x['took_s']} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
