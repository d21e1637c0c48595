"""`edgeinfer model import|inspect|verify|keygen|sign|optimize|encrypt`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
import yaml
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from ..core.config import load_file
from ..core.errors import ConfigError, EdgeInferError, ModelError
from ..core.modelpkg import load_package
from .common import console, setup_logging, task_progress
from .model_crypto import encrypt as encrypt_cmd

if TYPE_CHECKING:
    from ..core.modelpkg.signing import Signer

model_app = typer.Typer(no_args_is_help=True)


def _labels(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    p = Path(spec)
    if p.is_file():
        return [line.strip() for line in p.read_text().splitlines() if line.strip()]
    return [s.strip() for s in spec.split(",") if s.strip()]


@model_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A bare .onnx, .tflite or .engine file")],
    task: Annotated[str, typer.Option(help="detection, classification or segmentation")],
    out: Annotated[Path | None, typer.Option(help="Package folder to write (default: <file stem>-pkg)")] = None,
    name: Annotated[str | None, typer.Option(help="Package name (default: the file stem)")] = None,
    version: Annotated[str, typer.Option(help="Semantic version")] = "1.0.0",
    labels: Annotated[str | None, typer.Option(help="Labels: a file (one per line) or a,b,c")] = None,
    decoder: Annotated[Path | None, typer.Option(help="YAML/JSON file with the decoder block")] = None,
    layout: Annotated[str | None, typer.Option(help="Override: NCHW or NHWC")] = None,
    color: Annotated[str | None, typer.Option(help="Override: RGB, BGR or GRAY")] = None,
    resize: Annotated[str | None, typer.Option(help="Override: letterbox or stretch")] = None,
    mean: Annotated[str | None, typer.Option(help="Override: per-channel mean, 0..255 units, e.g. 127.5")] = None,
    std: Annotated[str | None, typer.Option(help="Override: per-channel std, 0..255 units, e.g. 127.5")] = None,
) -> None:
    """Make a model package from a bare model file, reading shapes from the model."""
    from ..core.modelpkg.importer import import_model

    setup_logging("WARNING")
    if task not in ("detection", "classification", "segmentation"):
        raise ModelError(f"unknown task {task!r}", "use detection, classification or segmentation")
    overrides: dict[str, Any] = {k: v for k, v in {"layout": layout, "color": color, "resize": resize}.items() if v}
    for key, val in (("mean", mean), ("std", std)):
        if val:
            try:
                overrides[key] = [float(x) for x in val.split(",")]
            except ValueError as exc:
                raise ModelError(f"--{key} {val!r} is not a list of numbers", f"e.g. --{key} 127.5") from exc
    dec = load_file(decoder) if decoder else None
    target = import_model(file, task=task, out_dir=out or Path(f"{file.stem}-pkg"), name=name, version=version,
                          labels=_labels(labels), decoder=dec, input_overrides=overrides)
    console.print(f"package written to [bold]{escape(str(target))}[/]")
    _print_manifest(target)


def _print_manifest(path: Path) -> None:
    pkg = load_package(path, verify=False)
    m = pkg.manifest
    t = Table(title=f"{m.name} {m.version}", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("task / format", f"{m.task} / {m.format}")
    t.add_row("model file", f"{m.model_file} ({pkg.model_sha256[:16]}…)")
    i = m.input
    t.add_row("input", f"{i.name or '(first)'} {i.layout} {i.width}x{i.height} {i.color} {i.dtype}, {i.resize}, "
              f"mean {i.mean} std {i.std}, batch {i.batch}")
    t.add_row("outputs", ", ".join(m.outputs) or "-")
    t.add_row("decoder", yaml.safe_dump(m.decoder.model_dump(mode="json"), default_flow_style=True,
                                        sort_keys=False, width=200).strip())
    t.add_row("labels", f"{len(m.labels)}: {', '.join(m.labels[:10])}{' …' if len(m.labels) > 10 else ''}")
    if m.source:
        t.add_row("source", ", ".join(f"{k}={v}" for k, v in m.source.items() if v))
    console.print(t)


@model_app.command()
def inspect(path: Annotated[Path, typer.Argument(help="Package folder or .zip")]) -> None:
    """Print a package's manifest."""
    _print_manifest(path)


@model_app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="Package folder or .zip")],
    backend: Annotated[str | None, typer.Option(help="Backend to load with (default: auto, CPU)")] = None,
    trust: Annotated[list[Path] | None, typer.Option(help="Trusted public key (PEM, from `model keygen`); "
                                                      "repeat for several. Given: the package must be signed "
                                                      "by one of them")] = None,
) -> None:
    """Check the signature (with --trust), the files' sha256 and that the model's real inputs/outputs match the
    manifest."""
    from ..core.backends import BackendOptions
    from ..core.modelpkg.signing import SIGNATURE_NAME, load_trusted_keys, verify_signature
    from ..core.modelpkg.verify import verify_package

    setup_logging("WARNING")
    keys = load_trusted_keys(trust or [])
    pkg = load_package(path, verify=False)
    if keys:
        sig = verify_signature(pkg.root, keys)
        _print_row(*sig.row())
        if not sig.ok:  # an untrusted model is never loaded, not even to check its shapes
            raise ModelError(f"package {path} failed verification: signature: {sig.detail}",
                             "install a package signed by a trusted key, or trust its signer's public key")
    elif (pkg.root / SIGNATURE_NAME).is_file():
        _print_row("signature", True, "present, not checked (pass --trust PUBKEY to check it)")
    opts = BackendOptions(name=backend or "auto", device=None if backend else "cpu")
    report = verify_package(pkg, opts)
    for what, ok, detail in report.checks:
        _print_row(what, ok, detail)
    if not report.ok:
        raise ModelError(f"package {path} failed verification: {report.first_failure()}",
                         "rebuild the package or fix manifest.yaml")


def _print_row(what: str, ok: bool, detail: str) -> None:
    console.print(f"{'[green]ok[/]  ' if ok else '[red]FAIL[/]'} {what:<9} {escape(detail)}", soft_wrap=True,
                  highlight=False)


@model_app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="Folder for <name>.key (private, 0600) and <name>.pub")],
    name: Annotated[str, typer.Option(help="File name stem of the key pair")] = "model-signing",
) -> None:
    """Make an Ed25519 key pair for signing model packages. Keep the .key off devices; ship the .pub."""
    from ..core.modelpkg.signing import generate_keypair

    setup_logging("WARNING")
    pair = generate_keypair(out, name)
    console.print(f"private key [bold]{pair.private}[/] (keep secret), public key [bold]{pair.public}[/]",
                  soft_wrap=True, highlight=False)
    console.print(f"key id {pair.key_id}", highlight=False)


@model_app.command()
def sign(
    path: Annotated[Path, typer.Argument(help="Package folder or .zip (signed in place)")],
    key: Annotated[Path | None, typer.Option(help="Private key PEM from `edgeinfer model keygen`")] = None,
    kms_key: Annotated[str | None, typer.Option(help="Sign with this AWS KMS key instead (id, ARN or alias; "
                                                "ECC_NIST_P256, SIGN_VERIFY; needs edgeinfer[aws-cloud])")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of --kms-key")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile for --kms-key")] = None,
) -> None:
    """Sign a package: signature.json covers the canonical manifest (every file's sha256, name, version).

    For IoT Edge, sign the package ZIP before uploading it (blob storage, the Azure ML registry): the twin's
    model.sha256 is then that of the signed ZIP."""
    from ..core.modelpkg.signing import sign_package

    setup_logging("WARNING")
    signer = _signer(key, kms_key, region, profile)
    written = sign_package(path, signer)
    console.print(f"signed: [bold]{escape(str(written))}[/] (key {signer.key_id[:16]}…)", soft_wrap=True,
                  highlight=False)


def _signer(key: Path | None, kms_key: str | None, region: str | None, profile: str | None,
            key_flag: str = "--key") -> Signer:
    """The signer a private key file or a KMS key (exactly one of them) makes."""
    from ..core.modelpkg.signing import LocalSigner, load_private_key

    if (key is None) == (kms_key is None):
        raise typer.BadParameter(f"give {key_flag} FILE or --kms-key KEY (one of them)", param_hint=key_flag)
    if key is not None:
        return LocalSigner(load_private_key(key))
    from ..cloud.aws.kms import KmsSigner
    from .aws import boto3_clients

    return KmsSigner(boto3_clients(region, profile).kms, str(kms_key))


@model_app.command()
def optimize(
    package: Annotated[Path, typer.Argument(help="Model package (folder or .zip); for an engine alone, an ONNX file")],
    out: Annotated[Path, typer.Option(help="With --to: the new package folder. Without: the engine file to write")],
    to: Annotated[str | None, typer.Option(help="onnx-int8, onnx-fp16, tflite-int8, tensorrt-fp16 or tensorrt-int8: "
                                           "write a new package, judged by an agreement report")] = None,
    calibration: Annotated[str | None, typer.Option(help="Frames to calibrate on: folder, image or video file "
                                                    "(int8 targets need them)")] = None,
    heldout: Annotated[str | None, typer.Option(help="Frames for the agreement report (default: every 4th "
                                                "calibration frame, held out of calibration)")] = None,
    min_precision: Annotated[float, typer.Option(help="Reject below this precision per label")] = 0.95,
    min_recall: Annotated[float, typer.Option(help="Reject below this recall per label")] = 0.95,
    min_mean_iou: Annotated[float, typer.Option(help="Reject below this mean IoU of matched boxes")] = 0.85,
    max_score_delta: Annotated[float, typer.Option(help="Reject beyond this mean |score change| per label")] = 0.1,
    min_top1: Annotated[float, typer.Option(help="Classification: reject below this top-1 agreement")] = 0.95,
    min_mask_iou: Annotated[float, typer.Option(help="Segmentation: reject below this mask IoU")] = 0.9,
    accept_below: Annotated[bool, typer.Option(help="Accept a package below the thresholds (exit 0, marked "
                                               "accepted-below)")] = False,
    max_frames: Annotated[int, typer.Option(help="Frames read from each frame set at most")] = 200,
    name: Annotated[str | None, typer.Option(help="New package name (default: <name>-<target>)")] = None,
    version: Annotated[str | None, typer.Option(help="New package version (default: the source's)")] = None,
    sign_key: Annotated[Path | None, typer.Option(help="Sign the new package with this private key")] = None,
    kms_key: Annotated[str | None, typer.Option(help="Sign the new package with this AWS KMS key")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    precision: Annotated[str, typer.Option(help="Without --to: fp32, fp16 or int8")] = "fp16",
    calibration_cache: Annotated[Path | None, typer.Option(help="Without --to: int8 calibration cache")] = None,
    workspace_mb: Annotated[int, typer.Option(help="Builder workspace limit (MiB)")] = 1024,
) -> None:
    """Quantise or compile a package into a new one an agreement report accepts (--to), or build a TensorRT
    engine file from ONNX (no --to; needs TensorRT and an NVIDIA GPU). Exits 1 when the report rejects it."""
    if to is None:
        _engine_only(package, out, precision, calibration_cache, workspace_mb)
        return
    from ..core.config import one_line
    from ..core.optimize.job import TARGETS, OptimizeOptions
    from .model_optimize import run_optimize

    setup_logging("WARNING")
    if to not in TARGETS:
        raise typer.BadParameter(f"{to!r} is not one of {', '.join(TARGETS)}", param_hint="--to")
    try:
        options = OptimizeOptions.model_validate({
            "target": to, "calibration": calibration, "heldout": heldout, "max_frames": max_frames,
            "accept_below": accept_below, "name": name, "version": version,
            "thresholds": {"min_precision": min_precision, "min_recall": min_recall, "min_mean_iou": min_mean_iou,
                           "max_score_delta": max_score_delta, "min_top1": min_top1, "min_mask_iou": min_mask_iou}})
    except ValidationError as exc:
        raise ConfigError(f"invalid optimize options: {one_line(exc)}", "fix the options named") from exc
    signer = _signer(sign_key, kms_key, None, None, "--sign-key") if (sign_key or kms_key) else None
    run_optimize(package, out, options, signer, as_json)


def _engine_only(onnx: Path, out: Path, precision: str, calibration_cache: Path | None, workspace_mb: int) -> None:
    """Build a TensorRT engine file from ONNX (or a package holding one)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    try:
        from ..core.optimize import Precision, build_engine
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise EdgeInferError("engine building is unavailable", "reinstall edgeinfer") from exc
    src = onnx
    if onnx.is_dir() or onnx.suffix == ".zip":
        pkg = load_package(onnx)
        if pkg.manifest.encryption is not None:  # an engine built from it would be the model in clear
            raise ModelError(f"{onnx} is encrypted", "build the engine from the clear package, then encrypt the "
                             "engine's package (`edgeinfer model encrypt`)")
        src = pkg.model_path
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
        task = prog.add_task("building engine", total=None)
        engine = build_engine(src, out, precision=cast(Precision, precision),  # build_engine checks it
                              calibration_cache=calibration_cache, workspace_mb=workspace_mb,
                              progress=task_progress(prog, task))
    console.print(f"engine written to [bold]{escape(str(engine))}[/]")


model_app.command("encrypt")(encrypt_cmd)
