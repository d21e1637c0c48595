"""`edgeinfer greengrass render|validate|bundle`: component recipes, checked before they leave the machine, and
the inference component's runtime bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .. import __version__
from ..greengrass import INFERENCE_COMPONENT, model_component_name
from ..greengrass.recipes import (
    InferenceOptions,
    check_recipe,
    load_recipe,
    recipe_filename,
    render_inference,
    render_model,
    runtime_artifact_key,
    write_recipes,
)
from ..greengrass.recipes.platforms import PLATFORMS, runtime_artifact_name, select
from ..greengrass.recipes.schema import check_schema, find_schema
from .bundle import bundle
from .common import console, setup_logging

greengrass_app = typer.Typer(no_args_is_help=True)
greengrass_app.command()(bundle)


def _schema_check(recipe: dict[str, Any], schema: Path | None) -> str:
    path = find_schema(schema)
    if path is None:
        return "project checks (Greengrass schema not found: pass --schema to use it too)"
    check_schema(recipe, path)
    return f"project checks + Greengrass schema ({path.name})"


@greengrass_app.command()
def render(
    version: Annotated[str, typer.Option(help="Version of the inference component to render (semver)")],
    out: Annotated[Path, typer.Option(help="Folder to write the recipes (YAML) into")],
    bucket: Annotated[str, typer.Option(help="S3 bucket the artifacts are uploaded to")] = "amzn-s3-demo-bucket",
    model: Annotated[str | None, typer.Option(help="Model name: the inference component depends on "
                                              "com.edgeinfer.Model.<model> (default: the --model-package's "
                                              "name, else blazeface-full-range)")] = None,
    model_range: Annotated[str, typer.Option(help="Model component versions the inference component accepts "
                                             "(npm-style range)")] = ">=1.0.0",
    model_package: Annotated[Path | None, typer.Option(help="Also render this package's model component and "
                                                       "write its ZIP artifact under OUT/artifacts/")] = None,
    model_version: Annotated[str | None, typer.Option(help="Model component version (default: the package's "
                                                      "version)")] = None,
    platform: Annotated[list[str] | None, typer.Option(help="Only these platforms (repeat); default all: "
                                                       + ", ".join(p.key for p in PLATFORMS))] = None,
    name: Annotated[str, typer.Option(help="Inference component name; any other than the default takes its "
                                      "commands, local results and telemetry on topics of its own, so two models can "
                                      "share a core (docs/streams.md)")] = INFERENCE_COMPONENT,
    schema: Annotated[Path | None, typer.Option(help="Greengrass recipe JSON schema (GDK's recipe_schema.json)")]
    = None,
    runtime_dir: Annotated[Path | None, typer.Option(help="Folder with the runtime bundles (edgeinfer greengrass "
                                                     "bundle): their artifact URIs become content-addressed")] = None,
    decryption_secret: Annotated[list[str] | None, typer.Option(help="Secrets Manager ARN of the model decryption "
                                                                "key: the component may read it (repeat)")] = None,
    minimal_defaults: Annotated[bool, typer.Option(
        help="DefaultConfiguration with only what Greengrass needs changed from the schema's defaults (Greengrass "
        "Lite: with one --platform, the recipe fits what it reads)")] = False,
) -> None:
    """Render the component recipes; each passes the project's checks (and the schema when found)."""
    from ..greengrass.artifacts import build_model_artifact
    from ..greengrass.bundle import runtime_digests

    setup_logging("WARNING")
    platforms = select(platform)
    digests = runtime_digests(runtime_dir, platforms, __version__) if runtime_dir is not None else {}
    recipes: list[dict[str, Any]] = []
    if model_package is not None:
        tmp_zip = out / "artifacts" / ".model.zip"
        pkg, info = build_model_artifact(model_package, tmp_zip)
        model = model or pkg.manifest.name
        mrecipe = render_model(model, model_version or pkg.manifest.version, bucket, info)
        final = out / "artifacts" / model_component_name(model) / mrecipe["ComponentVersion"] / "model.zip"
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp_zip.replace(final)
        uri = mrecipe["Manifests"][0]["Artifacts"][0]["URI"]
        console.print(f"artifact [bold]{escape(str(final))}[/] -> upload to {escape(uri)}", soft_wrap=True)
        recipes.append(mrecipe)
    opts = InferenceOptions(version=version, bucket=bucket, model=model or "blazeface-full-range",
                            model_range=model_range, component_name=name, runtime_sha256=digests,
                            decryption_secrets=tuple(decryption_secret or ()),
                            defaults="minimal" if minimal_defaults else "full")
    recipes.insert(0, render_inference(opts, platforms))
    for p in platforms:
        artifact = runtime_artifact_name(p)
        where = runtime_dir / artifact if runtime_dir is not None else f"{artifact} (edgeinfer greengrass bundle)"
        console.print(f"runtime [bold]{escape(str(where))}[/] -> upload to s3://{bucket}/"
                      f"{runtime_artifact_key(version, p, digests.get(p.key))}", soft_wrap=True)
    checked = [_schema_check(r, schema) for r in recipes]
    for path, how in zip(write_recipes(recipes, out), checked, strict=True):
        console.print(f"[green]ok[/] {escape(str(path))} ({path.stat().st_size} bytes; {escape(how)})", soft_wrap=True)


@greengrass_app.command()
def validate(
    recipe: Annotated[list[Path], typer.Argument(help="Recipe files (YAML or JSON)")],
    schema: Annotated[Path | None, typer.Option(help="Greengrass recipe JSON schema (GDK's recipe_schema.json)")]
    = None,
) -> None:
    """Check recipes with the project's rules (and the Greengrass schema when found); non-zero exit if any fails."""
    for path in recipe:
        data, text = load_recipe(path)
        check_recipe(data, text)
        how = _schema_check(data, schema)
        if path.name != recipe_filename(data):
            console.print(f"[yellow]note[/] {path.name}: rendered recipes are named {recipe_filename(data)}")
        console.print(f"[green]ok[/] {escape(str(path))} ({escape(how)})", soft_wrap=True)
