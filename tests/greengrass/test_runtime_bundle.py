"""The runtime bundle, for real: built with real pip from this checkout and PyPI (dependency wheels cached
under $EDGEINFER_CACHE_DIR/bundle-wheels), installed by the rendered recipe's REAL Install script (recipe
variables substituted as the nucleus does, `pip install --no-index`, nothing downloaded), then the Run entry
started from that venv against the fake nucleus. Plus: reproducible bytes, the sha256 check catching a
changed wheel, the Install skipped once done, an aarch64 bundle resolving, the GPU swap, and publish
uploading the bundle under its content-addressed key."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from edgeinfer.cloud.aws import registry
from edgeinfer.cloud.aws.errors import ArtifactError
from edgeinfer.cloud.aws.publish import publish
from edgeinfer.greengrass.bundle import (
    MANIFEST_NAME,
    REQUIREMENTS_NAME,
    Bundle,
    BundleError,
    BundleRequest,
    Target,
    build_bundles,
)
from edgeinfer.greengrass.recipes import InferenceOptions, render_inference
from edgeinfer.greengrass.recipes.platforms import select

from .conftest import BUCKET, VERSION, fast_config
from .fake_nucleus.launcher import stop
from .harness import THING, Core

pytestmark = pytest.mark.slow
AMD64, AARCH64, NVIDIA = (select([k])[0] for k in ("linux-x86_64", "linux-aarch64", "linux-amd64-nvidia"))
DEV_ONLY = {"pytest", "moto", "ruff", "onnx", "scikit-image", "tflite2onnx", "matplotlib", "jsonschema"}
REQUIREMENT = re.compile(r"^(?P<name>[a-z0-9.\-_]+)==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$")


@pytest.fixture(scope="module")
def wheel_cache(cache_dir: Path) -> Path:
    return cache_dir / "bundle-wheels"


@pytest.fixture(scope="module")
def amd64_bundle(wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """This machine's bundle (linux-amd64, CPython 3.11), built from the checkout."""
    (bundle,) = build_bundles([BundleRequest(Target(AMD64))], tmp_path_factory.mktemp("bundle"), cache=wheel_cache)
    return bundle


def contents(bundle: Bundle) -> tuple[list[zipfile.ZipInfo], dict[str, bytes]]:
    with zipfile.ZipFile(bundle.path) as zf:
        infos = zf.infolist()
        return infos, {i.filename: zf.read(i) for i in infos}


def requirements(text: str) -> set[tuple[str, str, str]]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    matches = [REQUIREMENT.match(ln) for ln in lines]
    assert all(matches), lines
    return {(m["name"], m["version"], m["sha"]) for m in matches if m}


def names(bundle: Bundle) -> set[str]:
    return {w.name for w in bundle.manifest.wheels}


def test_bundle_is_reproducible_and_pins_exactly_its_wheels(amd64_bundle: Bundle, wheel_cache: Path,
                                                            tmp_path: Path) -> None:
    (again,) = build_bundles([BundleRequest(Target(AMD64))], tmp_path, cache=wheel_cache)
    assert again.path.read_bytes() == amd64_bundle.path.read_bytes(), "same inputs, same bytes"
    infos, files = contents(amd64_bundle)
    assert [i.filename for i in infos] == sorted(files) and all("/" not in n for n in files)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    m = amd64_bundle.manifest
    assert (m.platform, m.python, m.extras) == ("linux-amd64", "3.11", ["aws", "tflite"])
    assert set(files) == {MANIFEST_NAME, REQUIREMENTS_NAME} | {w.file for w in m.wheels}
    assert json.loads(files[MANIFEST_NAME]) == m.model_dump(mode="json")
    for w in m.wheels:
        assert hashlib.sha256(files[w.file]).hexdigest() == w.sha256 and len(files[w.file]) == w.size
    assert requirements(files[REQUIREMENTS_NAME].decode()) == {(w.name, w.version, w.sha256) for w in m.wheels}
    assert {"edgeinfer", "onnxruntime", "awsiotsdk", "ai-edge-litert", "numpy"} <= names(amd64_bundle)
    assert not names(amd64_bundle) & (DEV_ONLY | {"onnxruntime-gpu"})
    assert m.edgeinfer_version == VERSION


def recipe_for(bundle: Bundle, model: str) -> dict:
    return render_inference(InferenceOptions(version=VERSION, bucket=BUCKET, model=model,
                                             runtime_sha256={bundle.manifest.platform: bundle.sha256}), (AMD64,))


def install(core: Core, bundle: Bundle, model_recipe: dict, model_artifact: tuple[Path, object],
            frames: Path) -> dict:
    """Place both components' artifacts as the nucleus does (the bundle unpacked beside the recipe's URI)."""
    recipe = recipe_for(bundle, model_recipe["ComponentName"].removeprefix("com.edgeinfer.Model."))
    (artifact,) = recipe["Manifests"][0]["Artifacts"]
    assert artifact["URI"] == f"s3://{BUCKET}/edgeinfer/runtime/{bundle.sha256}/{bundle.path.name}"
    core.install(model_recipe, [model_artifact[0]])
    core.install(recipe, [bundle.path], fast_config(frames))
    return recipe


def running_reports(core: Core, name: str) -> int:
    return sum(1 for r in core.nucleus.requests("UpdateState", name) if r.state == "RUNNING")


def test_recipe_install_builds_the_venv_offline_and_the_component_runs_from_it(
        core: Core, amd64_bundle: Bundle, model_recipe, model_artifact, demo_media) -> None:
    recipe = install(core, amd64_bundle, model_recipe, model_artifact, demo_media[0])
    name = recipe["ComponentName"]
    proc = core.start(recipe)  # the real Install script (sh -c, recipe variables substituted), then Run
    core.wait_state(name, "RUNNING", proc)
    n = core.nucleus
    n.wait_for(lambda: n.iot_publishes(f"edgeinfer/{THING}/result"), 60, "results from the bundled runtime")
    venv = core.layout.work(name) / f"venv-{VERSION}"
    assert (venv / ".edgeinfer-installed").is_file()
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import edgeinfer, onnxruntime, json, importlib."
                            "metadata as m; print(json.dumps([edgeinfer.__file__, [d.metadata['Name'] for d in "
                            "m.distributions()]]))"], capture_output=True, text=True, check=True, timeout=60)
    module, installed = json.loads(probe.stdout)
    assert module.startswith(str(venv)), "the component runs the bundled wheel, not this checkout"
    assert {canonicalize_name(d) for d in installed} - {"pip", "setuptools"} == names(amd64_bundle), \
        "the venv holds exactly the bundle"
    (venv / "sentinel").touch()
    assert stop(proc) == 0
    before = running_reports(core, name)
    again = core.start(recipe)  # Skipif: the marker exists, so Install does not run a second time
    n.wait_for(lambda: running_reports(core, name) > before, 90, "the restarted component to report RUNNING")
    assert again.poll() is None and (venv / "sentinel").exists(), "the venv was not rebuilt"
    log = core.log(name)
    assert log.count("Successfully installed") == 1 and "Traceback" not in log
    assert core.stop_all() == [0, 0]


def _tamper_wheel(folder: Path, bundle: Bundle) -> str:
    victim = next(w.file for w in bundle.manifest.wheels if w.name == "pydantic")  # always in a bundle
    with (folder / victim).open("ab") as f:
        f.write(b"tampered")
    return "THESE PACKAGES DO NOT MATCH THE HASHES"


def _other_python(folder: Path, bundle: Bundle) -> str:
    (folder / MANIFEST_NAME).write_text(bundle.manifest.model_copy(update={"python": "3.99"}).to_json())
    return "the runtime artifact is for Python 3.99, python3 here is"


@pytest.mark.parametrize("spoil", [_tamper_wheel, _other_python], ids=["changed-wheel", "other-python"])
def test_install_refuses_a_spoiled_bundle(core: Core, amd64_bundle: Bundle, model_recipe, model_artifact,
                                         demo_media, spoil: Callable[[Path, Bundle], str]) -> None:
    recipe = install(core, amd64_bundle, model_recipe, model_artifact, demo_media[0])
    name = recipe["ComponentName"]
    unpacked = core.layout.unarchived(name, VERSION) / amd64_bundle.path.stem
    expected = spoil(unpacked, amd64_bundle)
    with pytest.raises(RuntimeError, match=f"Install of {name} failed"):
        core.start(recipe)
    assert expected in core.log(name)
    assert not (core.layout.work(name) / f"venv-{VERSION}" / ".edgeinfer-installed").exists(), "runs again next time"


def test_aarch64_bundle_resolves_arm_wheels_only(wheel_cache: Path, tmp_path: Path) -> None:
    (arm,) = build_bundles([BundleRequest(Target(AARCH64))], tmp_path, cache=wheel_cache)
    assert arm.path.name == "edgeinfer-runtime-linux-aarch64.zip" and arm.manifest.platform == "linux-aarch64"
    platforms = {t.platform for w in arm.manifest.wheels for t in parse_wheel_filename(w.file)[3]}
    assert platforms and all(p == "any" or p.endswith("_aarch64") for p in platforms), platforms
    assert any(p.endswith("_aarch64") for p in platforms)
    assert {"onnxruntime", "ai-edge-litert", "awscrt", "numpy"} <= names(arm)


def _stand_in_onnxruntime_gpu(tmp_path: Path) -> Path:
    """A real (tiny) wheel named onnxruntime-gpu: the GPU swap without downloading 256 MB of CUDA build."""
    project, links = tmp_path / "onnxruntime-gpu", tmp_path / "links"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "onnxruntime-gpu"\nversion = "99.0.0"\ndependencies = ["numpy>=1.24"]\n'
        '[tool.setuptools]\npy-modules = []\n')
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(links), str(project)],
                   check=True, capture_output=True, timeout=300)
    return links


def test_gpu_bundle_ships_onnxruntime_gpu_in_place_of_onnxruntime(amd64_bundle: Bundle, wheel_cache: Path,
                                                                  tmp_path: Path) -> None:
    _, files = contents(amd64_bundle)
    wheel = tmp_path / next(w.file for w in amd64_bundle.manifest.wheels if w.name == "edgeinfer")
    wheel.write_bytes(files[wheel.name])  # --wheel: the edgeinfer wheel already built
    (gpu,) = build_bundles([BundleRequest(Target(NVIDIA))], tmp_path / "out", wheel=wheel, cache=wheel_cache,
                           find_links=[_stand_in_onnxruntime_gpu(tmp_path)])
    assert gpu.manifest.extras == ["aws", "gpu"] and "onnxruntime-gpu" in names(gpu)
    assert not list(wheel_cache.glob("onnxruntime_gpu-99*")), "a --find-links wheel must not enter the shared cache"
    assert not names(gpu) & {"onnxruntime", "ai-edge-litert"}, "they cannot share a venv; tflite is a CPU extra"
    assert ("onnxruntime-gpu", "99.0.0") in {(n, v) for n, v, _ in requirements(
        zipfile.ZipFile(gpu.path).read(REQUIREMENTS_NAME).decode())}
    with pytest.raises(BundleError, match="linux-amd64 is a CPU platform"):
        build_bundles([BundleRequest(Target(AMD64), ("aws", "gpu"))], tmp_path / "x", wheel=wheel)
    with pytest.raises(BundleError, match=r"no extra\(s\) \['cuda'\] -> use some of: .*tflite"):
        build_bundles([BundleRequest(Target(AMD64), ("cuda",))], tmp_path / "x", wheel=wheel)
    with pytest.raises(BundleError, match=r"--python '3\.8' is not a CPython version edgeinfer runs on"):
        Target(AMD64, python="3.8")


def test_publish_uploads_the_bundle_under_its_content_addressed_key(aws, demo_pkgs, amd64_bundle: Bundle,
                                                                    tmp_path: Path) -> None:
    registry.register(aws, demo_pkgs[0], "faces", BUCKET, approval="Approved")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / amd64_bundle.path.name).symlink_to(amd64_bundle.path)
    key = f"edgeinfer/runtime/{amd64_bundle.sha256}/{amd64_bundle.path.name}"
    out = publish(aws, "faces", BUCKET, runtime_dir=runtime, platforms=(AMD64,))
    assert f"artifact s3://{BUCKET}/{key}" in out.ledger.created
    head = aws.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == amd64_bundle.size and head["Metadata"]["sha256"] == amd64_bundle.sha256
    (made,) = [c for c in aws.greengrass.components.values() if c["name"] == "com.edgeinfer.Inference"]
    art = made["recipe"]["Manifests"][0]["Artifacts"][0]
    assert art["URI"] == f"s3://{BUCKET}/{key}" and art["Algorithm"] == "SHA-256"
    # a new inference version with the same bundle: the same key, reused, nothing uploaded
    again = publish(aws, "faces", BUCKET, runtime_dir=runtime, platforms=(AMD64,), inference_version="0.1.1")
    assert f"artifact s3://{BUCKET}/{key}" in again.ledger.reused and "component com.edgeinfer.Inference 0.1.1" \
        in again.ledger.created
    # the wrong platform's bundle under a name is refused before anything is uploaded
    (runtime / "edgeinfer-runtime-linux-aarch64.zip").symlink_to(amd64_bundle.path)
    with pytest.raises(BundleError, match="holds the bundle for linux-amd64, not linux-aarch64"):
        publish(aws, "faces", BUCKET, runtime_dir=runtime, platforms=(AARCH64,), inference_version="0.1.2")
    # someone else's bytes at the content-addressed key: an error, never an overwrite
    aws.s3.delete_object(Bucket=BUCKET, Key=key)
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the bundle")
    with pytest.raises(ArtifactError, match=r"already holds different bytes .* publish under a new version"):
        publish(aws, "faces", BUCKET, runtime_dir=runtime, platforms=(AMD64,), inference_version="0.1.3")
    assert not [c for c in aws.greengrass.components.values() if c["version"] in ("0.1.2", "0.1.3")]


def test_cli_bundle_then_render_with_the_bundle(amd64_bundle: Bundle, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgeinfer.cli.greengrass import greengrass_app

    runner = CliRunner()
    _, files = contents(amd64_bundle)
    wheel = tmp_path / next(w.file for w in amd64_bundle.manifest.wheels if w.name == "edgeinfer")
    wheel.write_bytes(files[wheel.name])
    res = runner.invoke(greengrass_app, ["bundle", "--platform", "linux-x86_64", "--out", str(tmp_path / "rt"),
                                         "--wheel", str(wheel)])
    assert res.exit_code == 0 and "edgeinfer-runtime-linux-amd64.zip" in res.output, res.output
    assert (tmp_path / "rt" / amd64_bundle.path.name).read_bytes() == amd64_bundle.path.read_bytes()
    res = runner.invoke(greengrass_app, ["render", "--version", VERSION, "--out", str(tmp_path / "out"),
                                         "--runtime-dir", str(tmp_path / "rt"), "--platform", "linux-amd64"])
    assert res.exit_code == 0, res.output
    assert f"s3://amzn-s3-demo-bucket/edgeinfer/runtime/{amd64_bundle.sha256}/{amd64_bundle.path.name}" in res.output
    res = runner.invoke(greengrass_app, ["validate", str(tmp_path / "out" / f"com.edgeinfer.Inference-{VERSION}.yaml")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(greengrass_app, ["render", "--version", VERSION, "--out", str(tmp_path / "out"),
                                         "--runtime-dir", str(tmp_path / "rt")])
    assert isinstance(res.exception, BundleError) and "edgeinfer-runtime-linux-amd64-nvidia.zip is missing" \
        in str(res.exception)
