"""``edgeinfer model verify``: hashes, and that the model's real inputs/outputs match the manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..backends import BackendOptions, open_backend
from ..errors import EdgeInferError, ModelError
from .crypto import decrypt_model
from .keys import KeyProvider
from .package import ModelPackage


@dataclass
class VerifyReport:
    package: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)

    def first_failure(self) -> str | None:
        return next((f"{what}: {detail}" for what, passed, detail in self.checks if not passed), None)


def verify_package(pkg: ModelPackage, options: BackendOptions | None = None,
                   keys: KeyProvider | None = None) -> VerifyReport:
    """The checks, in order; an encrypted package is loaded (in memory) only when ``keys`` is given."""
    from ..model import check_input_shape

    report = VerifyReport(str(pkg.root))
    m = pkg.manifest
    try:
        pkg.verify_hashes()
        report.checks.append(("sha256", True, f"{len(m.files)} file(s) match"))
    except ModelError as exc:
        report.checks.append(("sha256", False, str(exc)))
        return report  # never load a model whose bytes are not the ones the manifest describes
    if m.encryption is not None:
        if keys is None:
            report.checks.append(("encrypted", True, f"{m.encryption.algorithm}, key id {m.encryption.key_id}: "
                                  "not loaded without its key (--key KEYFILE)"))
            return report
        report.checks.append(("encrypted", True, f"{m.encryption.algorithm}, key id {m.encryption.key_id}"))
    try:
        clear = decrypt_model(pkg, keys)
    except EdgeInferError as exc:  # wrong key, key file refused
        report.checks.append(("decrypt", False, str(exc)))
        return report
    try:
        backend = open_backend(pkg.model_path, m.format, options or BackendOptions(device="cpu"), model_bytes=clear)
        del clear
    except ModelError as exc:
        report.checks.append(("load", False, str(exc)))
        return report
    with backend:
        report.checks.append(("load", True, backend.info.summary()))
        inp = next((t for t in backend.inputs if t.name == m.input.name), None) if m.input.name else backend.inputs[0]
        if inp is None:
            report.checks.append(("input", False, f"no input named {m.input.name!r}; model has "
                                  f"{[t.name for t in backend.inputs]}"))
        else:
            try:
                check_input_shape(inp.shape, m.input)
                report.checks.append(("input", True, f"{inp.name} {list(inp.shape)} {inp.dtype}"))
            except ModelError as exc:
                report.checks.append(("input", False, str(exc)))
        real = [t.name for t in backend.outputs]
        if m.outputs and m.outputs != real:
            report.checks.append(("outputs", False, f"manifest lists {m.outputs}, model has {real}"))
        else:
            report.checks.append(("outputs", True, ", ".join(f"{t.name} {list(t.shape)}" for t in backend.outputs)))
        used = [getattr(m.decoder, k) for k in ("output", "boxes_output", "scores_output", "classes_output")
                if getattr(m.decoder, k, None)]
        missing = [n for n in used if n not in real]
        report.checks.append(("decoder", not missing, f"needs outputs {missing} the model lacks" if missing
                              else f"{m.decoder.type} reads {used or ['first output']}"))
    if report.ok:
        report.checks.append(_activation_gate(pkg, options, keys))
    return report


def _activation_gate(pkg: ModelPackage, options: BackendOptions | None,
                     keys: KeyProvider | None = None) -> tuple[str, bool, str]:
    """The check a device runs before a model becomes active: load, warm up, decode the warm-up output."""
    from ..errors import EdgeInferError
    from ..model import load_model

    try:
        model = load_model(pkg, options or BackendOptions(device="cpu"), keys=keys)
    except EdgeInferError as exc:
        return ("warm-up", False, str(exc))
    try:
        model.warmup(1)
    except EdgeInferError as exc:
        return ("warm-up", False, str(exc))
    finally:
        model.close()
    return ("warm-up", True, "inference on a blank frame decoded")
