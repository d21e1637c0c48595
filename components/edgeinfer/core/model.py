"""A model ready to run: package + backend + preprocessor + decoder, with batching handled."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backends import Backend, BackendOptions, open_backend
from .errors import ModelError
from .modelpkg import ModelPackage, load_package
from .modelpkg.crypto import decrypt_model
from .modelpkg.keys import KeyProvider
from .modelpkg.manifest import FORMAT_BY_SUFFIX
from .preprocess import Preprocessor
from .tasks.base import DecoderBase

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    package: ModelPackage
    backend: Backend
    preprocessor: Preprocessor
    decoder: DecoderBase
    input_name: str
    max_batch: int
    keys: KeyProvider | None = field(default=None, repr=False)  # to load it again (an encrypted model)

    @property
    def manifest(self):
        return self.package.manifest

    @property
    def labels(self) -> list[str]:
        return self.package.manifest.labels

    def infer(self, batch: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Run ``batch`` ([N, ...] input tensors) and split the outputs per frame (batch dim removed)."""
        n = batch.shape[0]
        if n <= self.max_batch:
            outs = self.backend.run({self.input_name: batch})
            return [{k: v[i] for k, v in outs.items()} for i in range(n)]
        per_frame: list[dict[str, np.ndarray]] = []
        for start in range(0, n, self.max_batch):
            per_frame.extend(self.infer(batch[start : start + self.max_batch]))
        return per_frame

    def warmup(self, runs: int) -> None:
        """The activation gate: ``runs`` (at least one) inferences on a blank frame, the last one decoded.

        A model becomes active only after this passes, so a manifest that does not fit the model (a dtype,
        an output name, strides that disagree with the anchors) fails here with a ModelError, never on the
        first real frame."""
        m = self.package.manifest
        spec = m.input
        blank = np.full((spec.height, spec.width, 3), 114, dtype=np.uint8)
        step = "preprocess"
        try:
            tensor, transform = self.preprocessor(blank)
            step = "inference"
            outputs: list[dict[str, np.ndarray]] = []
            for _ in range(max(1, runs)):
                outputs = self.infer(tensor[None])
            step = "decoder"
            self.decoder.decode(outputs[0], transform, self.labels)
        except ModelError:
            raise
        except Exception as exc:  # the runtime's own errors: one line, with what to check
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            fixes = {"preprocess": "check input (layout, size, dtype, mean/std) in manifest.yaml",
                     "inference": "check input.dtype/layout/size in manifest.yaml against `edgeinfer model inspect`",
                     "decoder": "check the decoder section (output names, strides, anchors) in manifest.yaml"}
            raise ModelError(f"model {m.name} {m.version} failed its warm-up {step}: {detail}", fixes[step]) from exc

    def close(self) -> None:
        self.backend.close()


def resolve_package(path: str | Path, task: str | None = None, cache: Path | None = None) -> ModelPackage:
    """A package folder/zip, ``zoo:NAME`` (fetched once into the cache), or a bare model file imported on
    the fly (``task`` needed)."""
    if isinstance(path, str) and path.startswith("zoo:"):
        from .config import cache_dir
        from .zoo import fetch_package

        return load_package(fetch_package(path.removeprefix("zoo:"), cache or cache_dir(), log.info), cache=cache)
    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in FORMAT_BY_SUFFIX:
        if not task:
            raise ModelError(f"{p.name} is a bare model file, so its task is unknown",
                             "pass --task detection|classification|segmentation, or import it once with "
                             "`edgeinfer model import`")
        from .config import cache_dir
        from .modelpkg.importer import import_model
        from .modelpkg.package import sha256_file

        out = (cache or cache_dir()) / "imported" / f"{sha256_file(p)[:16]}-{task}"
        if not (out / "manifest.yaml").is_file():
            import_model(p, task=task, out_dir=out)
        return load_package(out)
    return load_package(p, cache=cache)


def load_model(package: ModelPackage, options: BackendOptions | None = None, score_threshold: float | None = None,
               max_batch: int = 1, keys: KeyProvider | None = None) -> LoadedModel:
    """Open the backend, check the model's real input against the manifest, build pre/post-processing.

    An encrypted package is decrypted in memory with the key ``keys`` gives and loaded from bytes: the clear
    model never touches the disk."""
    m = package.manifest
    clear = decrypt_model(package, keys)  # None: a clear package, loaded from its file
    backend = open_backend(package.model_path, m.format, options, model_bytes=clear)
    del clear  # the runtime holds what it needs
    try:
        inp = next((t for t in backend.inputs if t.name == m.input.name), None) if m.input.name else backend.inputs[0]
        if inp is None:
            raise ModelError(f"model has no input named {m.input.name!r} (it has "
                             f"{[t.name for t in backend.inputs]})", "fix input.name in manifest.yaml")
        check_input_shape(inp.shape, m.input)
        fixed = inp.fixed_batch
        model_batch = fixed if fixed is not None else max(m.input.batch, max_batch)
        decoder = m.decoder.with_threshold(score_threshold) if score_threshold is not None else m.decoder
        return LoadedModel(package, backend, Preprocessor(m.input), decoder, inp.name,
                           max(1, min(max_batch, model_batch)), keys)
    except Exception:
        backend.close()
        raise


def check_input_shape(shape: tuple, spec) -> None:
    """Raise ModelError when the model's real input disagrees with the manifest's input spec."""
    if len(shape) != 4:
        raise ModelError(f"model input has {len(shape)} dims {list(shape)}, expected 4 (batch + image)",
                         "this model does not take images; fix input in manifest.yaml")
    if spec.layout == "NCHW":
        c, h, w = shape[1], shape[2], shape[3]
    else:
        h, w, c = shape[1], shape[2], shape[3]
    want = {"channels": spec.channels, "height": spec.height, "width": spec.width}
    got = {"channels": c, "height": h, "width": w}
    wrong = [f"{k} {got[k]} != {v}" for k, v in want.items() if isinstance(got[k], int) and got[k] != v]
    if wrong:
        raise ModelError(f"manifest input ({spec.layout} {spec.width}x{spec.height}x{spec.channels}) disagrees with "
                         f"the model's input {list(shape)}: {', '.join(wrong)}",
                         "fix input.layout/width/height/color in manifest.yaml")
