"""The `edgeinfer` Typer app: its commands and the lazily imported command groups (``main`` runs it)."""

from __future__ import annotations

from types import MappingProxyType

import typer

from .lazy import LazyApp, LazyGroup
from .run import bench, run


class _Groups(LazyGroup):
    """The subcommand groups, each imported when called (a device's `edgeinfer run` needs none of them)."""

    lazy = MappingProxyType({
        "model": LazyApp("edgeinfer.cli.model", "model_app", "Make, inspect, verify and optimise model packages."),
        "config": LazyApp("edgeinfer.cli.config_cmd", "config_app",
                          "The configuration schema, defaults and validation."),
        "greengrass": LazyApp("edgeinfer.cli.greengrass", "greengrass_app",
                              "Render and validate the Greengrass v2 component recipes."),
        "aws": LazyApp("edgeinfer.cli.aws", "aws_app",
                       "SageMaker registry -> Greengrass components -> deployments (boto3)."),
        "azure": LazyApp("edgeinfer.cli.azure", "azure_app", "IoT Edge deployment manifests and IoT Hub deployments."),
        "captures": LazyApp("edgeinfer.cli.captures", "captures_app",
                            "List and download the frames devices captured for labelling (S3, Azure Blob)."),
    })


app = typer.Typer(
    name="edgeinfer",
    help="Edge-AI inference for camera and sensor fleets: run models next to the camera, deploy with "
    "Greengrass v2 or IoT Edge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Groups,
)
app.command(help="Run a model over a source (no flags: the embedded face-detector demo).")(run)
app.command(help="The loop a user writes by hand and the bare runtime vs the edgeinfer pipeline, same model "
            "and frames.")(bench)


@app.command()
def version() -> None:
    """Print the edgeinfer version."""
    from .. import __version__

    typer.echo(__version__)

