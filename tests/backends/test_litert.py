"""LiteRT backend on real .tflite files: BlazeFace, its int8 and dynamic-batch variants, and the Edge TPU path.

The Edge TPU itself is beyond reach: the delegate path runs the real ``load_delegate`` against a stand-in
plugin library (claims no nodes), and a recording loader checks what libedgetpu would be asked for.
"""

from __future__ import annotations

import ctypes.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeinfer.core.backends import open_backend
from edgeinfer.core.backends.base import BackendOptions, TensorSpec
from edgeinfer.core.backends.litert import LiteRtBackend, dequantize, quantize
from edgeinfer.core.errors import BackendError, ModelError

from .conftest import face_frames


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 128, 128, 3)).astype(np.float32)


class RecordingLoader:
    """Stands in for ``load_delegate``: records the call, then fails as told or loads ``library``."""

    def __init__(self, error: Exception | None = None, library: Path | None = None) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.error, self.library = error, library

    def __call__(self, library: str, options: dict[str, str]) -> Any:
        self.calls.append((library, dict(options)))
        if self.error is not None:
            raise self.error
        from ai_edge_litert.interpreter import load_delegate

        return load_delegate(str(self.library), options)


MISSING_LIB = OSError("libedgetpu.so.1: cannot open shared object file: No such file or directory")


# ------------------------------------------------------------------------------------------- CPU
def test_blazeface_specs_and_info(blazeface: Path) -> None:
    with LiteRtBackend(blazeface, BackendOptions()) as b:
        assert b.inputs == [TensorSpec("input", (1, 128, 128, 3), "float32")]
        assert {o.name: o.shape for o in b.outputs} == {"regressors": (1, 896, 16), "classificators": (1, 896, 1)}
        assert all(o.dtype == "float32" and o.scale is None for o in b.outputs)
        assert (b.info.device, b.info.precision, b.info.degraded, b.info.requested) == ("cpu", "fp32", False, ["cpu"])


def test_blazeface_finds_the_face_and_not_the_cat(blazeface: Path) -> None:
    pytest.importorskip("skimage")
    astronaut, _, cat = face_frames()
    with open_backend(blazeface, "tflite", BackendOptions(threads=2)) as b:
        assert isinstance(b, LiteRtBackend)
        face = sigmoid(b.run({"input": astronaut})["classificators"]).max()
        no_face = sigmoid(b.run({"input": cat})["classificators"]).max()
    assert face > 0.85 > 0.5 > no_face


def test_fixed_batch_model_runs_a_larger_batch_frame_by_frame(blazeface: Path) -> None:
    x = frames(3)
    with LiteRtBackend(blazeface, BackendOptions()) as b:
        batch = b.run({"input": x})
        singles = [b.run({"input": x[i:i + 1]}) for i in range(3)]
    assert batch["regressors"].shape == (3, 896, 16) and batch["classificators"].shape == (3, 896, 1)
    for i, single in enumerate(singles):
        for name, value in single.items():
            np.testing.assert_array_equal(batch[name][i], value[0])
    assert not np.array_equal(batch["classificators"][0], batch["classificators"][1])


def test_dynamic_batch_model_is_resized_to_the_feed(blazeface: Path, blazeface_dynamic: Path) -> None:
    x = frames(3, seed=1)
    with LiteRtBackend(blazeface, BackendOptions()) as fixed, LiteRtBackend(blazeface_dynamic, BackendOptions()) as dyn:
        assert dyn.inputs[0].shape == (None, 128, 128, 3) and dyn.inputs[0].fixed_batch is None
        expected = fixed.run({"input": x})
        got = dyn.run({"input": x})
        again = dyn.run({"input": x[2:]})  # shrinks back
    for name in expected:
        assert got[name].shape[0] == 3 and again[name].shape[0] == 1
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-4)
        np.testing.assert_allclose(again[name][0], expected[name][2], rtol=0, atol=1e-4)


def test_feeds_are_checked(blazeface: Path) -> None:
    with LiteRtBackend(blazeface, BackendOptions()) as b:
        with pytest.raises(ModelError, match="missing input"):
            b.run({"image": frames(1)})
        with pytest.raises(ModelError, match="takes float32, got uint8"):
            b.run({"input": np.zeros((1, 128, 128, 3), np.uint8)})
        out = b.run({"input": frames(1).astype(np.float64)})  # another float width is cast
        assert out["classificators"].dtype == np.float32


def test_missing_or_corrupt_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        LiteRtBackend(tmp_path / "nope.tflite", BackendOptions())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ModelError, match=r"could not load bad\.tflite"):
        LiteRtBackend(bad, BackendOptions())


def test_unknown_device_is_refused(blazeface: Path) -> None:
    with pytest.raises(BackendError, match="litert has no device 'cuda'"):
        LiteRtBackend(blazeface, BackendOptions(device="cuda"))


# ------------------------------------------------------------------------------------ quantised
def test_quantize_rounds_and_clips_to_the_dtype() -> None:
    x = np.array([-2.0, -0.004, 0.0, 0.006, 0.5, 2.0], np.float32)
    np.testing.assert_array_equal(quantize(x, 0.01, -3, np.dtype(np.int8)), [-128, -3, -3, -2, 47, 127])
    np.testing.assert_array_equal(quantize(x, 0.01, 10, np.dtype(np.uint8)), [0, 10, 10, 11, 60, 210])
    q = np.array([-128, -3, 0, 127], np.int8)
    got = dequantize(q, 0.5, -3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [-62.5, 0.0, 1.5, 65.0])


def test_int8_model_specs_carry_the_tensor_quantisation(blazeface_int8: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_path=str(blazeface_int8))
    with LiteRtBackend(blazeface_int8, BackendOptions()) as b:
        assert b.info.precision == "int8"
        for spec, detail in zip(b.inputs + b.outputs, raw.get_input_details() + raw.get_output_details(),
                                strict=True):
            assert spec.dtype == "int8"
            assert (spec.scale, spec.zero_point) == (pytest.approx(detail["quantization"][0]),
                                                     detail["quantization"][1])


def test_int8_model_takes_float_and_agrees_with_the_float_model(blazeface: Path, blazeface_int8: Path) -> None:
    with LiteRtBackend(blazeface, BackendOptions()) as f32, LiteRtBackend(blazeface_int8, BackendOptions()) as i8:
        for x in face_frames():
            ref, got = f32.run({"input": x}), i8.run({"input": x})
            assert got["classificators"].dtype == np.float32 and got["regressors"].dtype == np.float32
            a, b = ref["classificators"].ravel(), got["classificators"].ravel()
            assert np.corrcoef(a, b)[0, 1] > 0.93
            assert abs(sigmoid(a).max() - sigmoid(b).max()) < 0.1


def test_int8_feed_of_the_tensor_dtype_passes_through(blazeface_int8: Path) -> None:
    x = face_frames()[0]  # the int8 fixture needs scikit-image too
    with LiteRtBackend(blazeface_int8, BackendOptions()) as b:
        spec = b.inputs[0]
        q = np.clip(np.round(x / spec.scale + spec.zero_point), -128, 127).astype(np.int8)  # independent oracle
        from_float, from_int8 = b.run({"input": x}), b.run({"input": q})
        shifted = b.run({"input": np.clip(q.astype(np.int16) + 20, -128, 127).astype(np.int8)})
    np.testing.assert_array_equal(from_float["classificators"], from_int8["classificators"])
    assert not np.array_equal(from_int8["classificators"], shifted["classificators"])


# ------------------------------------------------------------------------------------- Edge TPU
def test_edgetpu_delegate_gets_the_library_and_device(blazeface: Path, noop_delegate: Path) -> None:
    loader = RecordingLoader(library=noop_delegate)
    with LiteRtBackend(blazeface, BackendOptions(device="edgetpu", edgetpu_device="usb:0"), load_delegate=loader) as b:
        assert loader.calls == [("libedgetpu.so.1", {"device": "usb:0"})]
        assert (b.info.device, b.info.active, b.info.degraded) == ("edgetpu", ["edgetpu"], False)
        assert b.info.requested == ["edgetpu", "cpu"]
        out = b.run({"input": frames(1)})
    with LiteRtBackend(blazeface, BackendOptions(device="cpu")) as cpu:
        np.testing.assert_array_equal(out["classificators"], cpu.run({"input": frames(1)})["classificators"])


def test_edgetpu_with_the_real_loader_and_a_delegate_library(blazeface: Path, noop_delegate: Path) -> None:
    options = BackendOptions(device="edgetpu", edgetpu_library=str(noop_delegate))
    with LiteRtBackend(blazeface, options) as b:
        assert b.info.device == "edgetpu" and not b.info.degraded
        assert b.run({"input": frames(2)})["classificators"].shape == (2, 896, 1)


def test_missing_libedgetpu_falls_back_to_cpu_degraded(blazeface: Path) -> None:
    loader = RecordingLoader(error=MISSING_LIB)
    with LiteRtBackend(blazeface, BackendOptions(device="edgetpu"), load_delegate=loader) as b:
        assert loader.calls == [("libedgetpu.so.1", {})]  # no device given: any Edge TPU
        assert (b.info.device, b.info.active, b.info.degraded) == ("cpu", ["cpu"], True)
        assert "libedgetpu" in b.info.reason and "install" in b.info.reason
        assert "DEGRADED" in b.info.summary()
        assert b.run({"input": frames(1)})["regressors"].shape == (1, 896, 16)


@pytest.mark.skipif(bool(ctypes.util.find_library("edgetpu")), reason="libedgetpu is installed on this machine")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # litert's Delegate.__del__
def test_this_machine_has_no_libedgetpu_so_the_real_loader_degrades(blazeface: Path) -> None:
    with LiteRtBackend(blazeface, BackendOptions(device="edgetpu", edgetpu_device="usb")) as b:
        assert b.info.degraded and b.info.device == "cpu"
        assert "libedgetpu.so.1" in b.info.reason


def test_library_present_but_no_tpu_plugged_in_degrades(blazeface: Path, noop_delegate: Path) -> None:
    # the stand-in plugin refuses {"device": "none"} the way libedgetpu refuses a device it cannot open
    options = BackendOptions(device="edgetpu", edgetpu_library=str(noop_delegate), edgetpu_device="none")
    with LiteRtBackend(blazeface, options) as b:
        assert b.info.degraded and b.info.device == "cpu"
        assert "no Edge TPU at none" in b.info.reason and "plug in" in b.info.reason


def test_edgetpu_file_name_tries_the_delegate_unless_cpu_is_asked(blazeface_edgetpu_name: Path,
                                                                  blazeface: Path) -> None:
    loader = RecordingLoader(error=MISSING_LIB)
    with LiteRtBackend(blazeface_edgetpu_name, BackendOptions(), load_delegate=loader) as b:
        assert len(loader.calls) == 1 and b.info.degraded
    for path, device in ((blazeface_edgetpu_name, "cpu"), (blazeface, None)):
        loader = RecordingLoader(error=MISSING_LIB)
        with LiteRtBackend(path, BackendOptions(device=device), load_delegate=loader) as b:
            assert loader.calls == [] and not b.info.degraded and b.info.requested == ["cpu"]


def test_model_compiled_for_the_edgetpu_cannot_fall_back(edgetpu_stub: Path) -> None:
    with pytest.raises(ModelError, match="compiled for the Edge TPU") as err:
        LiteRtBackend(edgetpu_stub, BackendOptions(), load_delegate=RecordingLoader(error=MISSING_LIB))
    assert "libedgetpu" in str(err.value)
