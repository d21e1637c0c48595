"""`edgeinfer config schema|defaults|validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape

from ..core import config as cfgmod
from .common import console

config_app = typer.Typer(no_args_is_help=True)


@config_app.command()
def schema() -> None:
    """Print the configuration JSON Schema."""
    typer.echo(json.dumps(cfgmod.json_schema(), indent=2))


@config_app.command()
def defaults() -> None:
    """Print the default configuration as YAML."""
    typer.echo(yaml.safe_dump(cfgmod.defaults_json(), sort_keys=False))


@config_app.command()
def validate(path: Annotated[Path, typer.Argument(help="YAML or JSON config file")]) -> None:
    """Validate a config file; exits non-zero with the reason when it is invalid."""
    cfgmod.validate(cfgmod.load_file(path), f"config {path}")
    console.print(f"[green]ok[/] {escape(str(path))}")


@config_app.command()
def docs() -> None:
    """Print the configuration reference (Markdown), generated from the schema."""
    from ..core.configdoc import render

    typer.echo(render(), nl=False)
