"""`edgeinfer greengrass bundle`: the inference component's runtime artifact(s), one ZIP per platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..greengrass.recipes.platforms import PLATFORMS
from .common import console, setup_logging, task_progress

DEFAULT_EXTRAS = "; ".join(f"{p.key}: {p.extras}" for p in PLATFORMS)


def bundle(
    out: Annotated[Path, typer.Option(help="Folder to write edgeinfer-runtime-<platform>.zip into")],
    platform: Annotated[list[str], typer.Option(help="Platform to bundle (repeat for several): "
                                                + ", ".join(p.key for p in PLATFORMS))],
    python: Annotated[str, typer.Option(help="The devices' python3 version (MAJOR.MINOR)")] = "3.11",
    extras: Annotated[str | None, typer.Option(help="edgeinfer extras, comma-separated (default per platform: "
                                               f"{DEFAULT_EXTRAS})")] = None,
    version: Annotated[str | None, typer.Option(help="edgeinfer version the bundle must hold (default: the "
                                                "checkout's)")] = None,
    glibc: Annotated[str, typer.Option(help="Oldest glibc on the devices (ldd --version)")] = "2.28",
    find_links: Annotated[list[Path] | None, typer.Option(help="Extra folder of wheels (repeat), e.g. NVIDIA's "
                                                          "onnxruntime-gpu wheel for Jetson")] = None,
    wheel: Annotated[Path | None, typer.Option(help="A built edgeinfer wheel (default: build this checkout's "
                                               "with pip wheel)")] = None,
    cache: Annotated[Path | None, typer.Option(help="Wheel cache kept between builds (default: "
                                               "$EDGEINFER_CACHE_DIR/bundle-wheels)")] = None,
) -> None:
    """Build the runtime bundle ZIP(s) the inference recipe installs: the edgeinfer wheel and every dependency
    wheel for the platform and Python, pinned with sha256s, byte-for-byte reproducible."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..core.config import cache_dir
    from ..greengrass.bundle import BundleRequest, Target, build_bundles
    from ..greengrass.recipes.platforms import select

    setup_logging("WARNING")
    asked = None if extras is None else tuple(e.strip() for e in extras.split(",") if e.strip())
    requests = [BundleRequest(Target(p, python, glibc), asked) for p in select(platform)]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as prog:
        task = prog.add_task("bundling", total=None)
        bundles = build_bundles(requests, out, wheel=wheel, version=version, find_links=find_links or (),
                                cache=cache or cache_dir() / "bundle-wheels",
                                progress=task_progress(prog, task))
    for b in bundles:
        m = b.manifest
        console.print(f"[green]ok[/] {b.path} ({len(m.wheels)} wheels, {b.size / 1e6:.1f} MB; CPython {m.python}, "
                      f"glibc >= {m.glibc}, extras {','.join(m.extras)}; sha256 {b.sha256})", soft_wrap=True)
    console.print(f"next: edgeinfer aws publish ... --runtime-dir {out} (uploads them), or edgeinfer greengrass "
                  f"render ... --runtime-dir {out} (prints their S3 URIs)", soft_wrap=True)
