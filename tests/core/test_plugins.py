"""Backends and transports are entry points: a package that declares one is found, edgeinfer's own included,
and a missing module becomes one line that says what to install (core/plugins.py)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeinfer.core import plugins
from edgeinfer.core.backends import registry
from edgeinfer.core.backends.base import BackendOptions
from edgeinfer.core.errors import BackendError, ConfigError, TelemetryError
from edgeinfer.core.telemetry.config import TelemetryConfig
from edgeinfer.core.telemetry.registry import open_transport
from tests.conftest import run_cli

PLUGIN = '''
from edgeinfer.core.backends.onnxruntime import OnnxRuntimeBackend
from edgeinfer.core.telemetry.stdio import StdoutTransport


class FastOnnx(OnnxRuntimeBackend):
    name = "fastonnx"
    rank = 1


class Kafka(StdoutTransport):
    opened = []

    @classmethod
    def from_uri(cls, uri, cfg, device_id):
        cls.opened.append(uri)
        return super().from_uri("stdout", cfg, device_id)
'''
BROKEN = "import some_vendor_sdk_that_is_not_here  # noqa\n"


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed distribution (a dist-info on sys.path) declaring a backend, a broken backend and a
    transport, as `pip install` of a plugin package would leave it."""
    site = tmp_path / "site"
    dist = site / "edgeinfer_acme-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_plugin.py").write_text(PLUGIN)
    (site / "acme_broken.py").write_text(BROKEN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: edgeinfer-acme\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [edgeinfer.backends]
        fastonnx = acme_plugin:FastOnnx
        broken = acme_broken:Broken

        [edgeinfer.transports]
        kafka = acme_plugin:Kafka
        """))
    monkeypatch.syspath_prepend(str(site))
    plugins._entry_points.cache_clear()
    yield site
    sys.modules.pop("acme_plugin", None)
    plugins._entry_points.cache_clear()


def test_edgeinfer_declares_its_own_backends_and_transports() -> None:
    assert {"onnxruntime", "litert", "tensorrt"} <= set(plugins.names(plugins.BACKENDS))
    assert {"stdout", "file", "mqtt", "mqtts", "greengrass", "iotedge"} <= set(plugins.names(plugins.TRANSPORTS))
    assert registry.for_format("onnx") == ["onnxruntime"] and registry.for_format("tflite") == ["litert"]
    assert registry.choose("tensorrt") == "tensorrt"


def test_a_third_party_backend_and_transport_are_found_by_entry_point(third_party: Path,
                                                                       demo_pkgs: tuple[Path, Path]) -> None:
    assert registry.parse_backend("fastonnx:cpu") == ("fastonnx", "cpu")
    assert registry.for_format("onnx") == ["fastonnx", "onnxruntime"], "rank 1 is preferred; broken is left out"
    backend = registry.open_backend(demo_pkgs[0] / "model.onnx", "onnx", BackendOptions())
    assert type(backend).__name__ == "FastOnnx" and backend.info.backend == "onnxruntime"

    transport = open_transport("kafka://broker:9092", TelemetryConfig(), "dev-1")
    assert transport is not None
    assert sys.modules["acme_plugin"].Kafka.opened == ["kafka://broker:9092"]
    with pytest.raises(ConfigError) as unknown:
        open_transport("amqp://x", TelemetryConfig(), "dev-1")
    assert "kafka" in unknown.value.fix and "mqtts://" in unknown.value.fix


def test_a_plugin_whose_module_cannot_import_is_named_with_what_is_missing(third_party: Path) -> None:
    with pytest.raises(BackendError) as err:
        registry.backend_class("broken")
    assert "python module some_vendor_sdk_that_is_not_here is missing" in str(err.value)
    assert err.value.fix == "install the python module 'some_vendor_sdk_that_is_not_here' into the environment " \
                            "edgeinfer runs in"


def test_a_missing_runtime_is_a_hint_not_a_traceback(demo_pkgs: tuple[Path, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails as if not installed
    with pytest.raises(BackendError) as err:
        registry.open_backend(demo_pkgs[0] / "model.onnx", "onnx", BackendOptions())
    assert str(err.value).startswith("backend 'onnxruntime' cannot start: python module onnxruntime is missing")
    assert err.value.fix.startswith("pip install onnxruntime (part of the base install")
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(BackendError) as err:
        registry.open_backend(demo_pkgs[1] / "model.tflite", "tflite", BackendOptions())
    assert err.value.fix == "pip install 'edgeinfer[tflite]'"


def test_a_transport_sdk_that_is_missing_is_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "edgeinfer.mqtt.transport" or m.startswith("awscrt")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "awscrt", None)
    with pytest.raises(TelemetryError) as err:
        open_transport("mqtt://127.0.0.1:1", TelemetryConfig(), "dev-1")
    assert "python module awscrt is missing" in str(err.value) and err.value.fix == "pip install 'edgeinfer[aws]'"


@pytest.mark.parametrize(("module", "extra"), [
    ("azure.iot.device", "[azure]"), ("azure.iot.hub", "[azure-cloud]"), ("azure.ai.ml.entities", "[azureml]"),
    ("boto3", "[aws-cloud]"), ("awsiot.greengrasscoreipc", "[aws]"), ("skimage", "[demo]"),
    ("matplotlib.pyplot", "[plots]"), ("ai_edge_litert.interpreter", "[tflite]")])
def test_install_hints_name_the_extra_by_the_longest_prefix(module: str, extra: str) -> None:
    assert f"'edgeinfer{extra}'" in plugins.install_hint(module)


def test_the_cli_says_what_to_install_when_onnxruntime_is_missing(demo_pkgs: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['onnxruntime'] = None\n")
    done = run_cli("run", "--model", str(demo_pkgs[0]), "--source", "synthetic:64x64:1", "--out",
                   str(tmp_path / "out"), env={"PYTHONPATH": str(blocker)})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "onnxruntime is missing" in error[0] and "pip install onnxruntime" in error[0], \
        done.stderr
