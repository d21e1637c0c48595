"""What a user writes by hand instead of `edgeinfer run --model PKG --source IMAGE`: read, resize, run, score.

    python bench/cold_start_bare.py PKG/model.onnx IMAGE

The yardstick of bench/bench_cold_start.py. Letterboxed to the model's input like the demo package's manifest
says (BlazeFace full range: 192x192 RGB, (x - 127.5) / 127.5, NCHW); prints the highest face score.
"""

import sys

import cv2
import numpy as np
import onnxruntime as ort

model, image = sys.argv[1], sys.argv[2]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
size = int(inp.shape[2])
img = cv2.imread(image)
h, w = img.shape[:2]
s = size / max(h, w)
nw, nh = round(w * s), round(h * s)
x = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
px, py = (size - nw) // 2, (size - nh) // 2
x = cv2.copyMakeBorder(x, py, size - nh - py, px, size - nw - px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
x = ((cv2.cvtColor(x, cv2.COLOR_BGR2RGB).astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
outputs = session.run(None, {inp.name: np.ascontiguousarray(x)})
logits = min(outputs, key=lambda o: o.shape[-1])  # the scores output: one value per anchor
sys.stdout.write(f"max face score {1 / (1 + np.exp(-float(logits.max()))):.2f}\n")
