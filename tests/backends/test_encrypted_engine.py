"""An encrypted TensorRT engine is deserialised from the decrypted bytes in memory (fake TensorRT/CUDA modules,
as in test_tensorrt.py): the file on disk is the ciphertext and is never read as an engine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeinfer.core.backends import BackendOptions, open_backend
from edgeinfer.core.modelpkg.crypto import associated_data, decrypt_bytes, encrypt_bytes

from .conftest import FakeGpu
from .fakes import engine_bytes


def test_engine_runs_from_decrypted_bytes(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    engine = engine_bytes([{"name": "image", "mode": "INPUT", "shape": [1, 3, 4, 4], "dtype": "FLOAT"},
                           {"name": "out", "mode": "OUTPUT", "shape": [1, 3, 4, 4], "dtype": "FLOAT"}],
                          {"out": ["image", 3.0]}, None, "10.3.0")
    key, aad = os.urandom(32), associated_data("doubler", "1.0.0", "model.engine")
    path = tmp_path / "model.engine"
    path.write_bytes(encrypt_bytes(engine, key, aad))  # what the package holds
    clear = decrypt_bytes(path.read_bytes(), key, aad, "model.engine")
    with open_backend(path, "tensorrt", BackendOptions(), model_bytes=clear) as backend:
        x = np.ones((1, 3, 4, 4), np.float32)
        np.testing.assert_array_equal(backend.run({"image": x})["out"], 3 * x)
