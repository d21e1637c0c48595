"""``build_engine`` against the fake TensorRT builder, on real ONNX files made with the ``onnx`` package.

The fake parser reads the ONNX graph (Mul by a constant) and the fake builder serialises an engine the
fake runtime loads, so a build is checked end to end: ONNX -> engine file -> TensorRtBackend -> numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeinfer.core.backends.base import BackendOptions
from edgeinfer.core.backends.tensorrt import META_SUFFIX, TensorRtBackend
from edgeinfer.core.errors import BackendError, ConfigError, ModelError
from edgeinfer.core.optimize import build_engine, write_atomic

from .conftest import FakeGpu
from .fakes import BuilderFlag, IInt8EntropyCalibrator2, IInt8MinMaxCalibrator, MemoryPoolType

CACHE = b"TRT-100300-EntropyCalibration2\nx: 3c010a14\ny: 3c810a14\n"


def mul_model(folder: Path, shape: list[int | str], factor: float = 2.0) -> Path:
    """y = x * factor; a str in ``shape`` is a dynamic dim."""
    k = helper.make_tensor("k", TensorProto.FLOAT, [], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "mul",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = folder / "mul.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def static_onnx(tmp_path: Path) -> Path:
    return mul_model(tmp_path, [1, 4], factor=3.0)


def test_fp16_build_sets_flags_and_pool_and_the_engine_runs(static_onnx: Path, tmp_path: Path,
                                                            fake_gpu: FakeGpu) -> None:
    engine = build_engine(static_onnx, tmp_path / "out" / "mul.engine", "fp16", workspace_mb=256)
    config, network = fake_gpu.trt.last_config, fake_gpu.trt.last_network
    assert config.flags == {BuilderFlag.FP16}
    assert config.pool_limits == {MemoryPoolType.WORKSPACE: 256 << 20}
    assert network.flags == 0 and config.profiles == [] and config.int8_calibrator is None
    meta = json.loads(Path(str(engine) + META_SUFFIX).read_text())
    assert meta["precision"] == "fp16" and meta["tensorrt"] == "10.3.0" and meta["source"] == "mul.onnx"
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    with TensorRtBackend(engine, BackendOptions()) as b:
        assert b.info.precision == "fp16"
        np.testing.assert_array_equal(b.run({"x": x})["y"], 3 * x)


def test_fp32_build_sets_no_precision_flag(static_onnx: Path, tmp_path: Path, fake_gpu: FakeGpu) -> None:
    build_engine(static_onnx, tmp_path / "mul.engine", "fp32")
    assert fake_gpu.trt.last_config.flags == set()


def test_int8_without_a_cache_fails_before_tensorrt_is_needed(static_onnx: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ConfigError, match="int8 needs calibration frames or a calibration cache") as err:
        build_engine(static_onnx, tmp_path / "mul.engine", "int8")
    assert "--calibration FRAMES" in str(err.value) and "--calibration-cache" in str(err.value)
    assert not (tmp_path / "mul.engine").exists()


def test_int8_hands_the_cache_to_tensorrt(static_onnx: Path, tmp_path: Path, fake_gpu: FakeGpu) -> None:
    cache = tmp_path / "calib.cache"
    cache.write_bytes(CACHE)
    build_engine(static_onnx, tmp_path / "mul.engine", "int8", calibration_cache=cache)
    config = fake_gpu.trt.last_config
    assert config.flags == {BuilderFlag.INT8, BuilderFlag.FP16}
    assert isinstance(config.int8_calibrator, IInt8EntropyCalibrator2)
    assert config.calibration_cache_read == CACHE
    assert config.int8_calibrator.get_batch(["x"]) is None


def test_calibrator_follows_the_cache_algorithm(static_onnx: Path, tmp_path: Path, fake_gpu: FakeGpu) -> None:
    cache = tmp_path / "minmax.cache"
    cache.write_bytes(b"TRT-100300-MinMaxCalibration\nx: 3c010a14\n")
    build_engine(static_onnx, tmp_path / "mul.engine", "int8", calibration_cache=cache)
    assert isinstance(fake_gpu.trt.last_config.int8_calibrator, IInt8MinMaxCalibrator)


def test_a_file_that_is_no_calibration_cache_is_refused(static_onnx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "calib.cache"
    cache.write_bytes(b"\x89PNG not a cache")
    with pytest.raises(ConfigError, match="not a TensorRT calibration cache"):
        build_engine(static_onnx, tmp_path / "mul.engine", "int8", calibration_cache=cache)


@pytest.mark.parametrize(("precision", "attr"), [("fp16", "fast_fp16"), ("int8", "fast_int8")])
def test_platform_without_fast_precision_is_refused(precision: str, attr: str, static_onnx: Path, tmp_path: Path,
                                                    fake_gpu: FakeGpu) -> None:
    setattr(fake_gpu.trt, attr, False)
    cache = tmp_path / "calib.cache"
    cache.write_bytes(CACHE)
    with pytest.raises(BackendError, match=f"this GPU has no fast {precision} support"):
        build_engine(static_onnx, tmp_path / "mul.engine", precision, calibration_cache=cache)  # type: ignore[arg-type]
    build_engine(static_onnx, tmp_path / "mul.engine", "fp32")  # fp32 needs nothing special


def test_dynamic_batch_gets_a_profile_up_to_max_batch(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    engine = build_engine(mul_model(tmp_path, ["N", 4]), tmp_path / "mul.engine", "fp16", max_batch=8)
    (profile,) = fake_gpu.trt.last_config.profiles
    assert profile.shapes == {"x": [(1, 4), (8, 4), (8, 4)]}
    with TensorRtBackend(engine, BackendOptions()) as b:
        x = np.ones((5, 4), np.float32)
        np.testing.assert_array_equal(b.run({"x": x})["y"], 2 * x)


def test_dynamic_image_size_is_refused(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    with pytest.raises(ConfigError, match="dynamic dims besides the batch"):
        build_engine(mul_model(tmp_path, ["N", "W"]), tmp_path / "mul.engine")


def test_unparseable_onnx_is_a_model_error(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelError, match=r"TensorRT could not parse bad\.onnx: In node -1"):
        build_engine(bad, tmp_path / "bad.engine")
    with pytest.raises(ModelError, match="cannot read"):
        build_engine(tmp_path / "none.onnx", tmp_path / "none.engine")


def test_failed_build_keeps_the_old_engine_and_leaves_no_temp_file(static_onnx: Path, tmp_path: Path,
                                                                    fake_gpu: FakeGpu) -> None:
    out = tmp_path / "engines"
    out.mkdir()
    (out / "mul.engine").write_bytes(b"old engine")
    fake_gpu.trt.fail_build = True
    with pytest.raises(BackendError, match=r"could not build an engine from mul\.onnx"):
        build_engine(static_onnx, out / "mul.engine")
    assert [p.name for p in out.iterdir()] == ["mul.engine"]
    assert (out / "mul.engine").read_bytes() == b"old engine"
    fake_gpu.trt.fail_build = False
    build_engine(static_onnx, out / "mul.engine")
    assert sorted(p.name for p in out.iterdir()) == ["mul.engine", "mul.engine.meta.json"]
    assert (out / "mul.engine").read_bytes() != b"old engine"


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "a.engine"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.engine"]
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.engine"]


def test_progress_reports_our_stages_and_tensorrt_phases(static_onnx: Path, tmp_path: Path,
                                                         fake_gpu: FakeGpu) -> None:
    seen: list[tuple[str, int, int]] = []
    build_engine(static_onnx, tmp_path / "mul.engine", progress=lambda *a: seen.append(a))
    assert seen[0] == ("parse onnx", 0, 1) and seen[-1] == ("write engine", 1, 1)
    assert [s for s in seen if s[0] == "Building engine"] == [("Building engine", i, 3) for i in range(4)]
    assert fake_gpu.trt.last_config.progress_monitor is not None


def test_bad_arguments(static_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        build_engine(static_onnx, tmp_path / "x.engine", "fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 1"):
        build_engine(static_onnx, tmp_path / "x.engine", workspace_mb=0)


def test_the_cli_builds_an_engine_and_shows_the_builders_phases(static_onnx: Path, tmp_path: Path,
                                                                 fake_gpu: FakeGpu) -> None:
    """`edgeinfer model optimize`'s success path, in process with the fake TensorRT: the progress callback gets
    our stages and the builder's phases (a one-argument callback crashed here once TensorRT was present)."""
    from typer.testing import CliRunner

    from edgeinfer.cli import app

    out = tmp_path / "cli" / "mul.engine"
    res = CliRunner().invoke(app, ["model", "optimize", str(static_onnx), "--out", str(out), "--precision", "fp16"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert f"engine written to {out}" in " ".join(res.output.split())
    assert out.is_file() and json.loads(Path(str(out) + META_SUFFIX).read_text())["precision"] == "fp16"


def test_int8_calibrates_on_frames_through_device_memory(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    """The v10 calibrator: TensorRT pulls every batch with get_batch (device pointers), gets None at the end,
    and the cache it writes is kept beside the engine; the device buffer is freed after the build."""
    onnx_path = mul_model(tmp_path, [1, 4], factor=2.0)
    frames = [np.full((1, 4), v, np.float32) for v in (0.5, -3.0, 1.5)]
    seen: list[tuple[str, int, int]] = []
    engine = build_engine(onnx_path, tmp_path / "mul.engine", "int8", calibration=frames,
                          progress=lambda *a: seen.append(a))
    config = fake_gpu.trt.last_config
    assert config.flags == {BuilderFlag.INT8, BuilderFlag.FP16}
    assert isinstance(config.int8_calibrator, IInt8EntropyCalibrator2)
    assert config.calibration_cache_read is None  # it calibrated instead of reading a cache
    for fed, sent in zip(config.calibration_batches, frames, strict=True):
        np.testing.assert_array_equal(fed, sent)
    assert [s for s in seen if s[0] == "int8 calibration"] == [("int8 calibration", i, 3) for i in (1, 2, 3)]
    cache = Path(str(engine) + ".calib.cache").read_bytes()
    assert cache.startswith(b"TRT-100300-EntropyCalibration2\nx: ")
    assert np.uint32(int(cache.split(b"x: ")[1][:8], 16)).view(np.float32) == pytest.approx(3.0 / 127)
    assert json.loads(Path(str(engine) + META_SUFFIX).read_text())["calibration_cache"] == "mul.engine.calib.cache"
    assert fake_gpu.cudart.allocations == {} and fake_gpu.cudart.malloc_calls == 1  # one buffer, reused, freed
    # the cache written by the frames build rebuilds without frames
    build_engine(onnx_path, tmp_path / "again.engine", "int8", calibration_cache=Path(str(engine) + ".calib.cache"))
    assert fake_gpu.trt.last_config.calibration_cache_read == cache


def test_int8_calibration_refuses_mixed_shapes_and_frees_on_a_failed_build(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    onnx_path = mul_model(tmp_path, [1, 4])
    with pytest.raises(ConfigError, match="calibration batches differ in shape"):
        build_engine(onnx_path, tmp_path / "a.engine", "int8", calibration=[np.ones((1, 4)), np.ones((1, 5))])
    fake_gpu.trt.fail_build = True
    with pytest.raises(BackendError, match="could not build"):
        build_engine(onnx_path, tmp_path / "a.engine", "int8", calibration=[np.ones((1, 4), np.float32)])
    assert len(fake_gpu.trt.last_config.calibration_batches) == 1  # it calibrated, then the build failed
    assert fake_gpu.cudart.malloc_calls == 1 and fake_gpu.cudart.allocations == {}
    assert not (tmp_path / "a.engine.calib.cache").exists()
